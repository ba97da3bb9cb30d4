#!/usr/bin/env node
// Runs or times an ONNX model on ONNX Runtime's CPU library (npm onnxruntime-node, installed
// by scripts/install_onnxruntime.sh into $SLIM_ONNXRUNTIME_DIR, default /opt/slimtrain/onnxruntime).
//
//   node tools/onnx_run.mjs run MODEL.onnx INPUT.bin OUTPUT.bin --shape N,... [--threads T]
//     Feeds INPUT.bin to the model's first input, writes its first output (float32) to
//     OUTPUT.bin, prints one JSON line:
//     {"output_shape":[...],"input_name":"...","output_name":"..."}
//   node tools/onnx_run.mjs bench MODEL.onnx INPUT.bin --shape N,... [--threads T]
//                            [--warmup W] [--iterations K]
//     W untimed runs (default 5), then K timed runs (default 50) of session.run on INPUT.bin;
//     prints one JSON line with median_ms, p90_ms, throughput (N / median seconds),
//     iterations, threads, onnxruntime_version.
//   INPUT.bin: exactly that shape, little-endian, of the model input's type: float32
//     (images, features) or int64 (token ids).
//   Both: intra-op threads T (default 1), inter-op 1, sequential execution, all graph
//   optimisations; --save-optimized PATH also writes the optimised graph ORT runs.
//
// Exit codes: 0 ok; 2 usage error; 3 missing or bad file, model or runtime (one line on
// stderr naming the file).
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const USAGE = `usage: onnx_run.mjs run MODEL.onnx INPUT.bin OUTPUT.bin --shape N,... [--threads T]
       onnx_run.mjs bench MODEL.onnx INPUT.bin --shape N,... [--threads T] [--warmup W] [--iterations K]
       (both also take --save-optimized PATH)`;

function usage(message) {
  process.stderr.write(`onnx_run: ${message}\n${USAGE}\n`);
  process.exit(2);
}

function fail(file, message) {
  process.stderr.write(`onnx_run: ${file}: ${message}\n`);
  process.exit(3);
}

const oneLine = (error) => String(error?.message ?? error).replace(/\s*\n\s*/g, ' ').trim();

function parseArgs(argv) {
  const options = { threads: 1, warmup: 5, iterations: 50, shape: null, saveOptimized: null };
  const positional = [];
  const integer = (flag, text, min) => {
    if (!/^\d+$/.test(text ?? '') || Number(text) < min) usage(`${flag} needs an integer >= ${min}`);
    return Number(text);
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) { positional.push(arg); continue; }
    const value = argv[++i];
    if (value === undefined) usage(`${arg} needs a value`);
    switch (arg) {
      case '--shape':
        options.shape = value.split(',').map((d) => integer('--shape', d, 1));
        break;
      case '--threads': options.threads = integer(arg, value, 1); break;
      case '--warmup': options.warmup = integer(arg, value, 0); break;
      case '--iterations': options.iterations = integer(arg, value, 1); break;
      case '--save-optimized': options.saveOptimized = value; break;
      default: usage(`unknown option ${arg}`);
    }
  }
  const [command, ...files] = positional;
  const wanted = { run: 3, bench: 2 }[command];
  if (wanted === undefined) usage(command ? `unknown command ${command}` : 'no command');
  if (files.length !== wanted) usage(`${command} takes ${wanted} file argument(s)`);
  if (!options.shape) usage('--shape is required');
  return { command, files, options };
}

function loadOrt() {
  const dir = process.env.SLIM_ONNXRUNTIME_DIR || '/opt/slimtrain/onnxruntime';
  const pkg = path.join(path.resolve(dir), 'node_modules', 'onnxruntime-node');
  if (!fs.existsSync(path.join(pkg, 'package.json'))) {
    fail(pkg, 'onnxruntime-node not installed (run scripts/install_onnxruntime.sh)');
  }
  try {
    return createRequire(import.meta.url)(pkg);
  } catch (error) {
    fail(pkg, `cannot load onnxruntime-node: ${error.message}`);
  }
}

// Bytes per element of the input types the runner feeds.
const ELEMENT_BYTES = { float32: 4, int64: 8 };

// The session and its first input's element type.
async function openSession(ort, model, options) {
  if (!fs.existsSync(model)) fail(model, 'no such file');
  const sessionOptions = {
    executionProviders: ['cpu'],
    intraOpNumThreads: options.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
  };
  if (options.saveOptimized) sessionOptions.optimizedModelFilePath = options.saveOptimized;
  let session;
  try {
    session = await ort.InferenceSession.create(model, sessionOptions);
  } catch (error) {
    fail(model, `cannot load model: ${oneLine(error)}`);
  }
  const input = session.inputMetadata?.[0];
  if (input && input.isTensor && !(input.type in ELEMENT_BYTES)) {
    fail(model, `first input ${input.name} is ${input.type}, not float32 or int64`);
  }
  return { session, inputType: input?.isTensor ? input.type : 'float32' };
}

async function runOnce(session, model, tensor) {
  const [inputName] = session.inputNames;
  const [outputName] = session.outputNames;
  try {
    const results = await session.run({ [inputName]: tensor }, [outputName]);
    return results[outputName];
  } catch (error) {
    fail(model, `run failed: ${oneLine(error)}`);
  }
}

// INPUT.bin as an ort.Tensor of `type` and `shape`.
function readInput(ort, file, shape, type) {
  let bytes;
  try {
    bytes = fs.readFileSync(file);
  } catch (error) {
    fail(file, error.code === 'ENOENT' ? 'no such file' : error.message);
  }
  const count = shape.reduce((a, b) => a * b, 1);
  const size = ELEMENT_BYTES[type];
  if (bytes.length !== count * size) {
    fail(file, `has ${bytes.length} bytes, ${type} of shape ${shape.join('x')} needs ${count * size}`);
  }
  const data = type === 'int64' ? new BigInt64Array(count) : new Float32Array(count);
  for (let i = 0; i < count; i++) {
    data[i] = type === 'int64' ? bytes.readBigInt64LE(i * 8) : bytes.readFloatLE(i * 4);
  }
  return new ort.Tensor(type, data, shape);
}

async function run(ort, [model, inputFile, outputFile], options) {
  const { session, inputType } = await openSession(ort, model, options);
  const tensor = readInput(ort, inputFile, options.shape, inputType);
  const output = await runOnce(session, model, tensor);
  if (output.type !== 'float32') fail(model, `first output is ${output.type}, not float32`);
  const bytes = Buffer.alloc(output.data.length * 4);
  output.data.forEach((v, i) => bytes.writeFloatLE(v, i * 4));
  try {
    fs.writeFileSync(outputFile, bytes);
  } catch (error) {
    fail(outputFile, error.message);
  }
  console.log(JSON.stringify({
    output_shape: output.dims,
    input_name: session.inputNames[0],
    output_name: session.outputNames[0],
  }));
}

async function bench(ort, [model, inputFile], options) {
  const { session, inputType } = await openSession(ort, model, options);
  const tensor = readInput(ort, inputFile, options.shape, inputType);
  for (let i = 0; i < options.warmup; i++) await runOnce(session, model, tensor);
  const times = [];
  for (let i = 0; i < options.iterations; i++) {
    const start = process.hrtime.bigint();
    await runOnce(session, model, tensor);
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  times.sort((a, b) => a - b);
  const mid = times.length >> 1;
  const median = times.length % 2 ? times[mid] : (times[mid - 1] + times[mid]) / 2;
  const p90 = times[Math.ceil(0.9 * times.length) - 1];
  const round = (x) => Math.round(x * 1000) / 1000;
  console.log(JSON.stringify({
    model,
    shape: options.shape,
    median_ms: round(median),
    p90_ms: round(p90),
    throughput: round(options.shape[0] / (median / 1000)),
    iterations: options.iterations,
    warmup: options.warmup,
    threads: options.threads,
    onnxruntime_version: ort.env?.versions?.node ?? null,
  }));
}

const { command, files, options } = parseArgs(process.argv.slice(2));
const ort = loadOrt();
await (command === 'run' ? run : bench)(ort, files, options);
