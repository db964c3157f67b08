// What the notebook `path` shows after its run: every cell with its outputs, the images in output areas,
// output areas that contain one of the `failures` texts (widgets that did not render), and open dialogs.
({path, failures}) => {
  const app = window.jupyterapp;
  const panel = Array.from(app.shell.widgets('main')).find(w => w.context && w.context.path === path);
  const cellOf = node => panel.content.widgets.findIndex(cell => cell.node.contains(node));
  const cells = panel.content.widgets.map((cell, index) => {
    const outputs = [];
    if (cell.model.type === 'code')
      for (let i = 0; i < cell.model.outputs.length; i++) {
        const o = cell.model.outputs.get(i).toJSON();
        outputs.push({type: o.output_type, ename: o.ename || '', evalue: o.evalue || '', name: o.name || '',
                      text: (Array.isArray(o.text) ? o.text.join('') : (o.text || '')).slice(0, 2000),
                      mimes: Object.keys(o.data || {})});
      }
    return {index, type: cell.model.type, source: cell.model.sharedModel.getSource(),
            count: cell.model.type === 'code' ? cell.model.executionCount : null,
            tags: cell.model.getMetadata('tags') || [], outputs};
  });
  const images = Array.from(panel.node.querySelectorAll('.jp-OutputArea-output img')).map(img => ({
    cell: cellOf(img), complete: img.complete, width: img.naturalWidth, height: img.naturalHeight}));
  const widgetFailures = [];
  panel.node.querySelectorAll('.jp-OutputArea-output').forEach(node => {
    for (const marker of failures)
      if (node.textContent.includes(marker))
        widgetFailures.push({cell: cellOf(node), text: node.textContent.trim().slice(0, 500)});
  });
  const dialogs = Array.from(document.querySelectorAll('.jp-Dialog')).map(d => d.textContent.trim().slice(0, 500));
  return {cells, images, widgetFailures, dialogs};
}
