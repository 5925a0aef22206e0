/**
 * Alpaca-style instruction data: a JSON array (or JSON Lines) of
 * `{instruction, input?, output}` as in Stanford Alpaca's `alpaca_data.json`
 * and its cleaned / translated descendants.
 *
 * Schema: `instruction`, `input` ("" when absent), `output`, and `prompt`: the
 * Stanford Alpaca template filled in, ending in "### Response:\n", so the
 * model is trained on `prompt + output` with the prompt masked out of the loss.
 */
import { table } from 'arquero';
import { DataError } from '../util/errors.js';
import { readText } from './delimited.js';
import type { TaskData } from './task.js';

const WITH_INPUT =
  'Below is an instruction that describes a task, paired with an input that provides further context. ' +
  'Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n';
const NO_INPUT =
  'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n' +
  '### Instruction:\n{instruction}\n\n### Response:\n';

export function alpacaPrompt(instruction: string, input = ''): string {
  const template = input.trim() === '' ? NO_INPUT : WITH_INPUT;
  // A function replacement, because "$&" and friends occur in real instructions.
  return template.replace('{instruction}', () => instruction).replace('{input}', () => input);
}

export function readAlpaca(file: string): TaskData {
  const text = readText(file);
  let records: Array<{ value: unknown; where: string }>;
  if (text.trimStart().startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      throw new DataError(file, `invalid JSON (${(e as Error).message})`);
    }
    records = (parsed as unknown[]).map((value, i) => ({ value, where: `record ${i + 1}` }));
  } else {
    records = [];
    text.split('\n').forEach((line, i) => {
      if (line.trim() === '') return;
      try {
        records.push({ value: JSON.parse(line), where: `line ${i + 1}` });
      } catch (e) {
        throw new DataError(file, `invalid JSON (${(e as Error).message})`, `line ${i + 1}`);
      }
    });
  }
  if (records.length === 0) throw new DataError(file, 'empty split: no records');
  const cols = { instruction: [] as string[], input: [] as string[], output: [] as string[], prompt: [] as string[] };
  for (const { value, where } of records) {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new DataError(file, 'expected an object {instruction, input, output}', where);
    }
    const r = value as Record<string, unknown>;
    for (const field of ['instruction', 'output'] as const) {
      if (typeof r[field] !== 'string') throw new DataError(file, `field "${field}" is ${r[field] === undefined ? 'missing' : typeof r[field]}; expected a string`, where);
    }
    if (r.input !== undefined && r.input !== null && typeof r.input !== 'string') {
      throw new DataError(file, `field "input" is ${typeof r.input}; expected a string`, where);
    }
    const input = (r.input as string | undefined | null) ?? '';
    cols.instruction.push(r.instruction as string);
    cols.input.push(input);
    cols.output.push(r.output as string);
    cols.prompt.push(alpacaPrompt(r.instruction as string, input));
  }
  return {
    table: table(cols),
    task: {
      name: 'alpaca', kind: 'generation', source: file,
      description: 'Instruction following: write the response to an instruction (with optional input).',
      textFields: ['prompt'], targetField: 'output', metrics: ['rouge-l', 'bleu'],
    },
  };
}
