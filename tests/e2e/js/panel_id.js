// The DOM id of the notebook `path`'s panel.
(path) => {
  const app = window.jupyterapp;
  const panel = Array.from(app.shell.widgets('main')).find(w => w.context && w.context.path === path);
  return panel.id;
}
