import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { alpacaPrompt, parseMeaningRepresentation, readAlpaca, readE2E } from '../../src/data/index.js';
import { tempDir } from './paths.js';

function file(name: string, text: string): string {
  const f = join(tempDir('gen'), name);
  writeFileSync(f, text);
  return f;
}

const E2E_TRAIN = `mr,ref
"name[The Vaults], eatType[pub], priceRange[more than £30], customerRating[5 out of 5], near[Café Adriatic]",The Vaults pub near Café Adriatic has a 5 star rating.  Prices start at £30.
"name[The Vaults], eatType[pub], priceRange[more than £30], customerRating[5 out of 5], near[Café Adriatic]","Close to Café Brazil, The Vaults pub is a 5 star rated place with prices over £30."
"name[The Cambridge Blue], eatType[pub], food[English], priceRange[cheap], near[Café Brazil]","The Cambridge Blue pub, near Café Brazil, serves cheap English food."
`;

describe('E2E NLG', () => {
  it('parses meaning representations, including commas inside values', () => {
    assert.deepEqual(parseMeaningRepresentation('name[Blue Spice], food[Fast food, Italian], area[riverside]'), {
      name: 'Blue Spice', food: 'Fast food, Italian', area: 'riverside',
    });
  });

  it('reads mr/ref rows and groups references of one MR', () => {
    const { table, task } = readE2E(file('trainset.csv', E2E_TRAIN));
    assert.equal(table.numRows(), 3);
    assert.deepEqual(table.array('mrId'), [0, 0, 1]);
    assert.equal(table.get('ref', 1), 'Close to Café Brazil, The Vaults pub is a 5 star rated place with prices over £30.');
    assert.equal(task.targetField, 'ref');
  });

  it('reads the blind test set (header MR, no references)', () => {
    const { table } = readE2E(file('testset.csv', 'MR\n"name[Blue Spice], eatType[coffee shop], area[city centre]"\n'));
    assert.deepEqual(table.array('ref'), ['']);
  });

  it('a malformed MR names the line and the expected form', () => {
    const bad = 'mr,ref\n"name[Alimentum], area city centre",Alimentum is in the city centre.\n';
    assert.throws(() => readE2E(file('devset.csv', bad)), /devset\.csv \(line 2\): column "mr": "area city centre" is not attribute\[value\]/);
  });

  it('missing mr column and empty split', () => {
    assert.throws(() => readE2E(file('x.csv', 'meaning,ref\na[b],c\n')), /missing column "mr"/);
    assert.throws(() => readE2E(file('y.csv', 'mr,ref\n')), /empty split/);
  });
});

describe('Alpaca instructions', () => {
  const data = [
    { instruction: 'Give three tips for staying healthy.', input: '', output: '1. Eat a balanced diet.' },
    { instruction: 'Translate to French.', input: 'Good morning', output: 'Bonjour' },
    { instruction: 'Explain $& in regex replacement strings.', output: 'It inserts the match.' },
  ];

  it('fills the Stanford Alpaca template with and without input', () => {
    const { table, task } = readAlpaca(file('alpaca_data.json', JSON.stringify(data)));
    assert.equal(table.numRows(), 3);
    assert.equal(table.get('prompt', 0), alpacaPrompt('Give three tips for staying healthy.'));
    assert.match(table.get('prompt', 0) as string, /^Below is an instruction that describes a task\. Write/);
    assert.match(table.get('prompt', 1) as string, /### Input:\nGood morning\n\n### Response:\n$/);
    assert.match(table.get('prompt', 2) as string, /Explain \$& in regex/);
    assert.equal(table.get('input', 2), '');
    assert.equal(task.targetField, 'output');
  });

  it('reads JSON Lines too', () => {
    const { table } = readAlpaca(file('a.jsonl', data.map((d) => JSON.stringify(d)).join('\n')));
    assert.equal(table.numRows(), 3);
  });

  it('a record without output names the record', () => {
    assert.throws(() => readAlpaca(file('b.json', JSON.stringify([data[0], { instruction: 'x' }]))), /b\.json \(record 2\): field "output" is missing; expected a string/);
  });

  it('empty file is an error', () => {
    assert.throws(() => readAlpaca(file('c.json', '[]')), /c\.json: empty split/);
  });
});
