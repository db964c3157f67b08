// Ask the server to shut down the kernel of the notebook `path` (without waiting), if the notebook is open.
(path) => {
  const app = window.jupyterapp;
  const panel = app && Array.from(app.shell.widgets('main')).find(w => w.context && w.context.path === path);
  if (panel) panel.sessionContext.shutdown();
}
