// Runs a TensorFlow.js graph model with the pure-JS CPU backend: the
// reference that src/ml/tfjs_graph_test.cc compares detops' rebuilt network
// against. Usage:
//   node testing/tfjs_reference.js MODEL.json INPUT.f32 H W OUT_DIR NODE...
// INPUT.f32 holds H*W*3 little-endian float32 values (NHWC, batch 1); each
// NODE's output is written to OUT_DIR/<i>.f32 with its shape in <i>.shape.
'use strict';
const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs-core');
require('@tensorflow/tfjs-backend-cpu');
const converter = require('@tensorflow/tfjs-converter');

async function main() {
  const [modelPath, inputPath, h, w, outDir, ...nodes] = process.argv.slice(2);
  if (!nodes.length) throw new Error('usage: MODEL.json INPUT.f32 H W OUT_DIR NODE...');
  tf.env().set('IS_NODE', false);  // no advice to install tfjs-node
  await tf.setBackend('cpu');
  const model = JSON.parse(fs.readFileSync(modelPath, 'utf8'));
  const dir = path.dirname(modelPath);
  // The export fixes its input at 512 x 512; the convolutions take any size.
  const signature = model.signature || { inputs: {} };
  for (const input of Object.values(signature.inputs)) {
    input.tensorShape.dim.forEach((d, i) => { if (i === 1 || i === 2) d.size = '-1'; });
  }
  for (const node of model.modelTopology.node) {
    if (node.op === 'Placeholder' && node.attr && node.attr.shape) {
      node.attr.shape.shape.dim.forEach((d, i) => { if (i === 1 || i === 2) d.size = '-1'; });
    }
  }
  const specs = [];
  const buffers = [];
  for (const group of model.weightsManifest) {
    specs.push(...group.weights);
    for (const p of group.paths) buffers.push(fs.readFileSync(path.join(dir, p)));
  }
  const all = Buffer.concat(buffers);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  const handler = tf.io.fromMemory({
    modelTopology: model.modelTopology,
    weightSpecs: specs,
    weightData,
    format: model.format,
    generatedBy: model.generatedBy,
    convertedBy: model.convertedBy,
    signature: model.signature,
  });
  const graph = await converter.loadGraphModel(handler);
  const raw = fs.readFileSync(inputPath);
  const values = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  const input = tf.tensor4d(values, [1, Number(h), Number(w), 3]);
  const placeholder = model.modelTopology.node.find((n) => n.op === 'Placeholder');
  const inputName = Object.keys(signature.inputs)[0] || placeholder.name;
  const outputs = graph.execute({ [inputName]: input }, nodes);
  const list = Array.isArray(outputs) ? outputs : [outputs];
  fs.mkdirSync(outDir, { recursive: true });
  list.forEach((t, i) => {
    const data = t.dataSync();
    fs.writeFileSync(path.join(outDir, `${i}.f32`), Buffer.from(new Float32Array(data).buffer));
    fs.writeFileSync(path.join(outDir, `${i}.shape`), t.shape.join(' '));
  });
}

main().catch((e) => {
  process.stderr.write(`tfjs_reference: ${e.message}\n`);
  process.exit(1);
});
