// The kernel's state as the notebook `path` shows it, or what the page is still doing before it has one.
(path) => {
  const app = window.jupyterapp;
  if (!app) return 'loading JupyterLab';
  const panel = Array.from(app.shell.widgets('main')).find(w => w.context && w.context.path === path);
  if (!panel) return 'opening the notebook';
  const session = panel.sessionContext.session;
  if (!session || !session.kernel) return panel.sessionContext.isReady ? 'no kernel' : 'starting the kernel';
  return session.kernel.status;
}
