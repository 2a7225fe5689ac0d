/**
 * Path matching built once from the document's path templates. Static paths are looked up
 * directly and win over templated ones, so `/trips/pages` never lands on `/trips/{trip_id}`;
 * among templated paths, the one with more literal segments wins.
 */
export interface Match<T> {
  template: string;
  methods: ReadonlyMap<string, T>;
  params: Record<string, string>;
}

interface TemplatedRoute<T> {
  template: string;
  segments: Array<{ literal: string } | { param: string }>;
  literalCount: number;
  methods: Map<string, T>;
}

export class RouteTable<T> {
  private readonly staticRoutes = new Map<string, { template: string; methods: Map<string, T> }>();
  private readonly templated: TemplatedRoute<T>[] = [];

  add(template: string, method: string, value: T): void {
    const upper = method.toUpperCase();
    if (!template.includes('{')) {
      const route = this.staticRoutes.get(template) ?? { template, methods: new Map<string, T>() };
      route.methods.set(upper, value);
      this.staticRoutes.set(template, route);
      return;
    }
    let route = this.templated.find((r) => r.template === template);
    if (!route) {
      const segments = template
        .split('/')
        .slice(1)
        .map((part) => {
          const param = /^\{([A-Za-z0-9_]+)\}$/.exec(part)?.[1];
          return param ? { param } : { literal: part };
        });
      route = { template, segments, literalCount: segments.filter((s) => 'literal' in s).length, methods: new Map() };
      this.templated.push(route);
      this.templated.sort((a, b) => b.literalCount - a.literalCount);
    }
    route.methods.set(upper, value);
  }

  /** Matches a raw (still percent-encoded) path; parameter values come back encoded. */
  match(path: string): Match<T> | undefined {
    const exact = this.staticRoutes.get(path);
    if (exact) return { template: exact.template, methods: exact.methods, params: {} };
    const parts = path.split('/').slice(1);
    for (const route of this.templated) {
      const params = paramsIfFits(route.segments, parts);
      if (params) return { template: route.template, methods: route.methods, params };
    }
    return undefined;
  }
}

/** A path's parameters when its segments fit a template's (an empty segment is no value), else undefined. */
function paramsIfFits(segments: TemplatedRoute<unknown>['segments'], parts: readonly string[]): Record<string, string> | undefined {
  if (segments.length !== parts.length) return undefined;
  const params: Record<string, string> = {};
  let i = 0;
  for (const segment of segments) {
    const part = parts[i++] ?? '';
    if ('literal' in segment) {
      if (segment.literal !== part) return undefined;
    } else {
      if (part === '') return undefined;
      params[segment.param] = part;
    }
  }
  return params;
}
