// Progress of Run All Cells in the notebook `path`: code cells, those that ran, those running or queued, errors.
(path) => {
  const app = window.jupyterapp;
  const panel = Array.from(app.shell.widgets('main')).find(w => w.context && w.context.path === path);
  const session = panel.sessionContext.session;
  const state = {kernel: session && session.kernel ? session.kernel.status : 'no kernel',
                 code: 0, ran: 0, running: [], errors: 0};
  panel.content.widgets.forEach((cell, index) => {
    if (cell.model.type !== 'code' || !cell.model.sharedModel.getSource().trim()) return;
    state.code += 1;
    if (cell.model.executionCount !== null) state.ran += 1;
    const prompt = cell.node.querySelector('.jp-InputArea-prompt');
    if (cell.model.executionState === 'running' || (prompt && prompt.textContent.includes('*')))
      state.running.push(index);
    for (let i = 0; i < cell.model.outputs.length; i++)
      if (cell.model.outputs.get(i).type === 'error') state.errors += 1;
  });
  return state;
}
