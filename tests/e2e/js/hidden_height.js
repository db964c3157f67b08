// Scroll the notebook `path` to its top; return how many pixels of it are hidden below the panel's fold.
(path) => {
  const app = window.jupyterapp;
  const panel = Array.from(app.shell.widgets('main')).find(w => w.context && w.context.path === path);
  const outer = panel.content.node.querySelector('.jp-WindowedPanel-outer');
  const inner = panel.content.node.querySelector('.jp-WindowedPanel-inner');
  outer.scrollTop = 0;
  return inner.scrollHeight - outer.clientHeight;
}
