/** Prints values as TypeScript source in the project's style: single quotes, bare keys where valid. */

/** Source text placed as is (a spread, a function, a reference to a constant). */
class Code {
  constructor(readonly text: string) {}
}

export const code = (text: string) => new Code(text);

export function stringLiteral(text: string): string {
  return `'${text
    .replace(/\\/g, '\\\\')
    .replace(/'/g, "\\'")
    .replace(/\n/g, '\\n')
    .replace(/\r/g, '\\r')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029')}'`;
}

/** A template literal's text part: backticks, backslashes and `${` escaped. */
export function templateText(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/`/g, '\\`').replace(/\$\{/g, '\\${');
}

const propertyKey = (key: string) => (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key) ? key : stringLiteral(key));

/** Short values stay on one line (up to `width` characters), longer ones break one member per line. */
export function toSource(value: unknown, indent = '', width = 120): string {
  if (value instanceof Code) return value.text;
  if (value === null || value === undefined) return String(value);
  if (typeof value === 'string') return stringLiteral(value);
  if (typeof value === 'number' || typeof value === 'boolean') {
    if (typeof value === 'number' && Math.abs(value) === Number.MAX_SAFE_INTEGER) return value < 0 ? '-Number.MAX_SAFE_INTEGER' : 'Number.MAX_SAFE_INTEGER';
    return String(value);
  }
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    const flat = `[${value.map((v) => toSource(v, inner, Infinity)).join(', ')}]`;
    if (flat.length + indent.length <= width && !flat.includes('\n')) return flat;
    return `[\n${value.map((v) => `${inner}${toSource(v, inner, width)},`).join('\n')}\n${indent}]`;
  }
  const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
  if (entries.length === 0) return '{}';
  const member = (key: string, v: unknown, ind: string, w: number) =>
    key.startsWith('...') && v instanceof Code ? `...${v.text}` : `${propertyKey(key)}: ${toSource(v, ind, w)}`;
  const flat = `{ ${entries.map(([k, v]) => member(k, v, inner, Infinity)).join(', ')} }`;
  if (flat.length + indent.length <= width && !flat.includes('\n')) return flat;
  return `{\n${entries.map(([k, v]) => `${inner}${member(k, v, inner, width)},`).join('\n')}\n${indent}}`;
}
