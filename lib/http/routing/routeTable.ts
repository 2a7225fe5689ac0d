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
          const param = /^\{([A-Za-z0-9_]+)\}$/.exec(part);
          return param ? { param: param[1]! } : { literal: part };
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
      if (route.segments.length !== parts.length) continue;
      const params: Record<string, string> = {};
      let matched = true;
      for (let i = 0; i < parts.length; i++) {
        const segment = route.segments[i]!;
        const part = parts[i]!;
        if ('literal' in segment) {
          if (segment.literal !== part) {
            matched = false;
            break;
          }
        } else {
          if (part === '') {
            matched = false;
            break;
          }
          params[segment.param] = part;
        }
      }
      if (matched) return { template: route.template, methods: route.methods, params };
    }
    return undefined;
  }
}
