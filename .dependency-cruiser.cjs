// The layers of the house (README "Layout"), bottom to top. A module imports only from its own
// layer or the layers below it; `npx depcruise` (npm run lint:layers) fails on any arrow upwards
// and on any import circle.
const layers = [
  { name: 'ground', path: '^lib/(errors|version)\\.ts$|^lib/ground/' },
  { name: 'db', path: '^lib/db/' },
  { name: 'data', path: '^lib/(lakebase|cache|replicas|userAccess|tables|postgrest|admission)/' },
  { name: 'ops', path: '^lib/(ops|telemetry)/' },
  { name: 'auth', path: '^lib/auth/' },
  { name: 'http', path: '^lib/http/' },
  { name: 'root', path: '^lib/(?!(errors|version)\\.ts$)[^/]+\\.ts$' },
  { name: 'app', path: '^(server\\.ts|functions/|openapi/|examples/)' },
];

/** Every layer may not import any layer above it. */
const upward = layers.flatMap((layer, index) => {
  const above = layers.slice(index + 1).map((l) => l.path);
  if (above.length === 0) return [];
  return [
    {
      name: `${layer.name}-imports-upward`,
      comment: `${layer.name} is below ${layers
        .slice(index + 1)
        .map((l) => l.name)
        .join(', ')}: it may not import them`,
      severity: 'error',
      from: { path: layer.path, pathNot: layers.slice(0, index).map((l) => l.path).concat(layers.slice(index + 1).map((l) => l.path)) },
      to: { path: above },
    },
  ];
});

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'An import circle: no module in it can be read or changed on its own',
      severity: 'error',
      from: { path: '^(lib|functions|openapi|examples|tools|bench)/|^server\\.ts$' },
      to: { circular: true },
    },
    {
      name: 'product-imports-tests',
      comment: 'The product never imports test code, the benchmark or the tools',
      severity: 'error',
      from: { path: '^(lib|functions|openapi|examples)/|^server\\.ts$' },
      to: { path: '^(test|bench|tools)/' },
    },
    ...upward,
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist|\\.data)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};
