// A YAML configuration file checked against its JSON Schema, every problem at the line and column
// where it is: the policy file (policy-file.ts) and the vault's config read through here. The
// schema is the documentation users' editors see too, so its descriptions are the hints.
import { readdirSync, readFileSync } from 'node:fs';
import { isMap, isNode, isPair, isScalar, LineCounter, type Node, parseDocument } from 'yaml';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import { AmberError } from '../core/errors.ts';

/** One problem: where (1-based) and what to do. */
export interface ConfigProblem {
  line: number;
  col: number;
  message: string;
}

export interface YamlConfig {
  /** The document as plain data (undefined when YAML itself did not parse). */
  value: unknown;
  problems: ConfigProblem[];
  /** Where the value at this path is, for the cross-checks a schema cannot make. */
  at(path: (string | number)[], message: string): ConfigProblem;
}

const SCHEMA_DIR = new URL('../../schema/', import.meta.url);
const SCHEMA_ID = 'https://amber-backup.invalid/schema/';
let ajv: Ajv2020 | undefined;

/** A schema shipped in the package's schema/ folder (next to src/ and dist/); they may refer to each other. */
export function schemaValidator(name: string): ValidateFunction {
  if (!ajv) {
    ajv = new Ajv2020({ allErrors: true, verbose: true, strict: true, strictRequired: false });
    for (const file of readdirSync(SCHEMA_DIR).filter((entry) => entry.endsWith('.schema.json')))
      ajv.addSchema(JSON.parse(readFileSync(new URL(file, SCHEMA_DIR), 'utf8')));
  }
  const validate = ajv.getSchema(SCHEMA_ID + name);
  if (!validate) throw new Error(`no schema ${name} in ${SCHEMA_DIR.pathname}`);
  return validate;
}

export function parseYamlConfig(text: string, validate: ValidateFunction): YamlConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const position = (offset: number) => {
    const { line, col } = lines.linePos(offset);
    return { line, col };
  };
  const nodeAt = (path: (string | number)[]): Node | undefined => {
    for (let depth = path.length; depth >= 0; depth--) {
      const node = depth === 0 ? doc.contents : doc.getIn(path.slice(0, depth), true);
      if (isNode(node)) return node;
    }
    return undefined;
  };
  const at = (path: (string | number)[], message: string): ConfigProblem => ({
    ...position(nodeAt(path)?.range?.[0] ?? 0),
    message,
  });

  const problems: ConfigProblem[] = doc.errors.map((error) => ({
    ...position(error.pos[0]),
    message: `${error.message.split('\n')[0]} (YAML syntax)`,
  }));
  if (problems.length > 0) return { value: undefined, problems, at };

  let value: unknown;
  try {
    // yaml refuses an alias bomb ("billion laughs") here, with a ReferenceError: a problem of the file.
    value = doc.toJS() ?? {};
  } catch (error) {
    return {
      value: undefined,
      problems: [{ line: 1, col: 1, message: `${(error as Error).message} (YAML aliases)` }],
      at,
    };
  }
  if (!validate(value)) {
    for (const error of relevantErrors(validate.errors ?? [])) {
      const path = pathOf(error.instancePath);
      if (error.keyword === 'additionalProperties') {
        const key = String(error.params.additionalProperty);
        const map = nodeAt(path);
        const pair = isMap(map)
          ? map.items.find((item) => isPair(item) && isScalar(item.key) && String(item.key.value) === key)
          : undefined;
        const keyNode = pair && isNode(pair.key) ? pair.key : map;
        problems.push({ ...position(keyNode?.range?.[0] ?? 0), message: explain(error, path, value) });
      } else {
        problems.push(at(path, explain(error, path, value)));
      }
    }
  }
  return { value, problems, at };
}

/** All problems as one error: `FILE:LINE:COL: what`, in the order of the file. */
export function configError(file: string, what: string, problems: ConfigProblem[]): AmberError {
  const sorted = [...problems].sort((a, b) => a.line - b.line || a.col - b.col);
  const lines = sorted.map((problem) => `${file}:${problem.line}:${problem.col}: ${problem.message}`);
  return new AmberError(
    'CONFIG_INVALID',
    `${what} ${file} has ${problems.length === 1 ? 'a problem' : `${problems.length} problems`}:\n${lines.join('\n')}`,
    {
      hint: 'fix each line named above; nothing was started or changed',
      details: { file, problems: sorted },
    },
  );
}

// A oneOf whose branches each say "must have required property X" tells the user nothing the oneOf
// does not: keep the oneOf, drop what its branches said.
function relevantErrors(errors: ErrorObject[]): ErrorObject[] {
  const oneOfs = errors.filter((error) => error.keyword === 'oneOf');
  const seen = new Set<string>();
  return errors.filter((error) => {
    const within = (oneOf: ErrorObject) =>
      error !== oneOf &&
      error.instancePath.startsWith(oneOf.instancePath) &&
      error.schemaPath.startsWith(`${oneOf.schemaPath}/`);
    if (oneOfs.some(within)) return false;
    // A key that fails propertyNames also yields the inner keyword's error: one message is enough.
    if (error.propertyName !== undefined && error.keyword !== 'propertyNames') return false;
    const key = `${error.instancePath} ${error.keyword} ${JSON.stringify(error.params)}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function pathOf(pointer: string): (string | number)[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((part) => (/^\d+$/.test(part) ? Number(part) : part));
}

/** `sources[0] (finance).retain.daily`: the path as a reader finds it in the file. */
export function describePath(path: (string | number)[], value: unknown): string {
  let text = '';
  let node: unknown = value;
  for (const part of path) {
    node = (node as Record<string | number, unknown> | undefined)?.[part];
    if (typeof part === 'number') {
      const name = (node as { name?: unknown } | undefined)?.name;
      text += `[${part}]${typeof name === 'string' ? ` (${name})` : ''}`;
    } else text += text === '' ? part : `.${part}`;
  }
  return text === '' ? 'the file' : text;
}

function explain(error: ErrorObject, path: (string | number)[], value: unknown): string {
  const where = describePath(path, value);
  const described = (error.parentSchema?.description as string | undefined)?.replace(/\.$/, '');
  const about = described ? ` (${described})` : '';
  const shown = JSON.stringify(error.data);
  switch (error.keyword) {
    case 'additionalProperties': {
      const key = String(error.params.additionalProperty);
      const allowed = Object.keys((error.parentSchema?.properties as object | undefined) ?? {});
      const near = closest(key, allowed);
      return `unknown key "${key}" in ${where}${near ? `; did you mean "${near}"?` : ''} (allowed: ${allowed.join(', ')})`;
    }
    case 'required':
      return `${where} needs "${error.params.missingProperty}"`;
    case 'type': {
      const wanted = error.params.type === 'array' ? 'a list, e.g. [a, b]' : `a ${error.params.type}`;
      return `${where} must be ${wanted}, not ${kindOf(error.data)} ${shown}${about}`;
    }
    case 'pattern':
      return `${where}: ${shown} is not valid${about}`;
    case 'enum': {
      const allowed = (error.params.allowedValues as unknown[]).map(String);
      const near = closest(String(error.data), allowed);
      return `${where}: ${shown} is not one of ${allowed.join(', ')}${near ? `; did you mean "${near}"?` : ''}`;
    }
    case 'propertyNames':
      return `${where}: the key ${JSON.stringify(error.params.propertyName)} is not a valid name: a letter or digit, then letters, digits, '_' or '-', at most 63 in all`;
    case 'oneOf':
      return `${where}${about}: give exactly one of its kinds`;
    case 'minItems':
      return `${where} must list at least ${error.params.limit}`;
    case 'minLength':
      return `${where} must not be empty`;
    case 'minProperties':
      return `${where} must have at least ${error.params.limit} ${error.params.limit === 1 ? 'entry' : 'entries'}`;
    case 'uniqueItems':
      return `${where} lists ${JSON.stringify((error.data as unknown[])[error.params.i as number])} twice`;
    default:
      return `${where} ${error.message ?? 'is not valid'}${about}`;
  }
}

const kindOf = (data: unknown) =>
  data === null
    ? 'empty'
    : Array.isArray(data)
      ? 'a list'
      : typeof data === 'object'
        ? 'a mapping'
        : `the ${typeof data}`;

/** The allowed word nearest to a typo, if it is near enough to be what was meant. */
export function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  return best !== undefined && bestDistance <= Math.max(1, Math.floor(best.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  let beforePrevious = previous;
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      // Two letters swapped ("mian") are one slip, not two.
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        current[j] = Math.min(current[j], beforePrevious[j - 2] + 1);
    }
    beforePrevious = previous;
    previous = current;
  }
  return previous[b.length];
}
