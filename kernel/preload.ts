/**
 * What a first cell can use without imports. The imports run through the
 * executor before the kernel serves, so tslab keeps them as declarations and
 * every later cell sees them *typed*, exactly as if the user had written them.
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { TsRuntime } from './runtime.js';
import { PACKAGE_NAME } from './resolve.js';

/**
 * The one list to edit. For `names`, each module in `from` is tried in order
 * and the first that exports a name provides it.
 */
export function preloadList(): ({ names: string[]; from: string[] } | { namespace: string; from: string })[] {
  return [
    {
      names: ['tf', 'useBackend', 'loadModel', 'injectShareLoRA', 'loadAdapter', 'lossAndGrads', 'Trainer', 'parameterTable', 'paperTable', 'datasets',
        'generate', 'fullFineTune', 'randomModel', 'saveModel', 'loadTokenizer', 'collateClassification', 'collateCausalLM', 'taskBatches', 'runGrid', 'bleu', 'rougeL',
        'summarize', 'compare', 'meanCI', 'pairedTTest', 'wilcoxonSignedRank', 'bootstrapCI'],
      from: [PACKAGE_NAME],
    },
    { names: ['plot', 'table', 'display', 'progressBar'], from: [PACKAGE_NAME] },
    { namespace: 'aq', from: 'arquero' },
  ];
}

export interface PreloadResult {
  /** the names cells can use */
  names: string[];
  /** problems worth showing the user once */
  notes: string[];
  backend?: { name: string; device: string };
  /** the package's runtime exports, for hooking Trainer callbacks */
  library?: Record<string, unknown>;
}

export async function preload(runtime: TsRuntime, repoRoot: string, backendName: string): Promise<PreloadResult> {
  const req = createRequire(join(repoRoot, 'package.json'));
  const notes: string[] = [];
  const exportsOf = new Map<string, Record<string, unknown> | undefined>();
  const load = (spec: string) => {
    if (!exportsOf.has(spec)) {
      try {
        exportsOf.set(spec, req(spec) as Record<string, unknown>);
      } catch (e) {
        exportsOf.set(spec, undefined);
        notes.push(`could not load ${spec}: ${(e as Error).message.split('\n')[0]}`);
      }
    }
    return exportsOf.get(spec);
  };

  const statements: { code: string; names: string[] }[] = [];
  for (const entry of preloadList()) {
    if ('namespace' in entry) {
      if (load(entry.from)) statements.push({ code: `import * as ${entry.namespace} from ${JSON.stringify(entry.from)};`, names: [entry.namespace] });
      continue;
    }
    const bySource = new Map<string, string[]>();
    for (const name of entry.names) {
      const src = entry.from.find((s) => load(s) && name in load(s)!);
      if (src) bySource.set(src, [...(bySource.get(src) ?? []), name]);
      else notes.push(`${name} is not exported by ${entry.from[0]} yet, so it is not preloaded`);
    }
    for (const [src, names] of bySource) {
      statements.push({ code: `import { ${names.join(', ')} } from ${JSON.stringify(src)};`, names });
    }
  }

  const names: string[] = [];
  // One statement at a time, so a module whose types fail to compile costs only its own names.
  for (const s of statements) {
    const out = await runtime.execute(s.code);
    if (out.ok) names.push(...s.names);
    else notes.push(`preloading ${s.names.join(', ')} failed: ${out.error?.evalue}`);
  }

  const result: PreloadResult = { names, notes, library: exportsOf.get(PACKAGE_NAME) };
  if (names.includes('useBackend')) {
    for (const name of backendName === 'cpu' ? ['cpu'] : [backendName, 'cpu']) {
      const out = await runtime.execute(`const backend = await useBackend(${JSON.stringify(name)});`);
      if (out.ok) {
        result.backend = runtime.local('backend') as PreloadResult['backend'];
        names.push('backend');
        break;
      }
      notes.push(`backend "${name}" could not start: ${out.error?.evalue}${name !== 'cpu' ? '; using cpu instead' : ''}`);
    }
  }
  return result;
}
