// Bring the notebook `path`'s tab to the front and give its notebook the focus.
(path) => {
  const app = window.jupyterapp;
  const panel = Array.from(app.shell.widgets('main')).find(w => w.context && w.context.path === path);
  app.shell.activateById(panel.id);
  panel.content.activate();
}
