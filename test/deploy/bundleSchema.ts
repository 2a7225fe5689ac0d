/**
 * The documented structure of the parts of a Databricks Asset Bundle and an app.yaml this project
 * uses, as JSON Schema for ajv. Every key here is one the Databricks docs and the bundle JSON Schema
 * published with the Databricks CLI (`databricks bundle schema`; definitions `config.Root`,
 * `config.Bundle`, `config.Target`, `variable.Variable`, `resources.App`, `resources.AppConfig`,
 * `resources.AppEnvVar`, `resources.AppPermission`, `apps.AppResource`, `apps.AppResourcePostgres`,
 * `apps.AppResourceDatabase`) define; `additionalProperties: false` makes a misspelt or invented key
 * fail, as `databricks bundle validate` would warn. Only the subset in use is described: a key the
 * CLI accepts but this project does not use is refused here too, on purpose, so adding one means
 * checking the docs and adding it below.
 */

/** `${var.name}` and friends: the CLI substitutes them before it checks types. */
const INTERPOLATION = '^\\$\\{[a-zA-Z0-9_.\\-\\[\\]]+\\}$';
const stringOrRef = { type: 'string' } as const;

const permissionLevels = { enum: ['CAN_MANAGE', 'CAN_USE'] } as const; // apps.AppPermissionLevel

const appPermission = {
  type: 'object',
  additionalProperties: false,
  required: ['level'],
  properties: {
    level: permissionLevels,
    user_name: stringOrRef,
    group_name: stringOrRef,
    service_principal_name: stringOrRef,
  },
  // Exactly one principal.
  oneOf: [{ required: ['user_name'] }, { required: ['group_name'] }, { required: ['service_principal_name'] }],
} as const;

/** apps.AppResourcePostgres: Lakebase Autoscaling. */
const postgresResource = {
  type: 'object',
  additionalProperties: false,
  required: ['branch', 'database', 'permission'],
  properties: {
    branch: { type: 'string', anyOf: [{ pattern: '^projects/[^/]+/branches/[^/]+$' }, { pattern: INTERPOLATION }] },
    database: { type: 'string', anyOf: [{ pattern: '^projects/[^/]+/branches/[^/]+/databases/[^/]+$' }, { pattern: INTERPOLATION }] },
    permission: { enum: ['CAN_CONNECT_AND_CREATE'] },
  },
} as const;

/** apps.AppResourceDatabase: Lakebase Provisioned. */
const databaseResource = {
  type: 'object',
  additionalProperties: false,
  required: ['instance_name', 'database_name', 'permission'],
  properties: {
    instance_name: stringOrRef,
    database_name: stringOrRef,
    permission: { enum: ['CAN_CONNECT_AND_CREATE'] },
  },
} as const;

/** apps.AppResource, restricted to the two database kinds. */
const appResource = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: {
    name: stringOrRef,
    description: stringOrRef,
    postgres: postgresResource,
    database: databaseResource,
  },
  oneOf: [{ required: ['postgres'] }, { required: ['database'] }],
} as const;

/** resources.AppEnvVar (bundle spelling: value_from) and app.yaml's (valueFrom). */
const envVar = (valueFromKey: 'value_from' | 'valueFrom') => ({
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: {
    name: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$' },
    value: { type: 'string' },
    [valueFromKey]: { type: 'string', minLength: 1 },
  },
  oneOf: [{ required: ['value'] }, { required: [valueFromKey] }],
});

const command = { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } } as const;

/** resources.AppConfig: app.yaml's settings inside the bundle. */
const appConfig = {
  type: 'object',
  additionalProperties: false,
  properties: { command, env: { type: 'array', items: envVar('value_from') } },
} as const;

/**
 * resources.App: the name is required wherever the app appears, a target's override included (as in
 * the CLI's schema); the rest is optional there, and the deployed app requires more below.
 */
const app = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: {
    name: stringOrRef,
    description: stringOrRef,
    source_code_path: stringOrRef,
    config: appConfig,
    resources: { type: 'array', items: appResource },
    permissions: { type: 'array', items: appPermission },
  },
} as const;

const resources = {
  type: 'object',
  additionalProperties: false,
  properties: { apps: { type: 'object', additionalProperties: app } },
} as const;

/** variable.Variable (declaration) and variable.TargetVariable (a value, or a map with default). */
const variable = {
  type: 'object',
  additionalProperties: false,
  properties: { description: { type: 'string' }, default: {}, type: { enum: ['complex'] }, lookup: { type: 'object' } },
} as const;
const targetVariable = {
  anyOf: [
    { type: ['string', 'number', 'boolean'] },
    { type: 'object', additionalProperties: false, properties: { default: {}, description: { type: 'string' } } },
  ],
} as const;

const target = {
  type: 'object',
  additionalProperties: false,
  properties: {
    default: { type: 'boolean' },
    mode: { enum: ['development', 'production'] },
    workspace: {
      type: 'object',
      additionalProperties: false,
      properties: { host: { type: 'string' }, profile: { type: 'string' }, root_path: { type: 'string' } },
    },
    variables: { type: 'object', additionalProperties: targetVariable },
    resources,
    permissions: { type: 'array', items: appPermission },
  },
} as const;

/** config.Root: a databricks.yml (or an included file, which may hold any root key but `bundle`). */
export const bundleFileSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    bundle: {
      type: 'object',
      additionalProperties: false,
      required: ['name'],
      properties: { name: { type: 'string' }, databricks_cli_version: { type: 'string' } },
    },
    include: { type: 'array', items: { type: 'string' } },
    variables: { type: 'object', additionalProperties: variable },
    resources,
    targets: { type: 'object', additionalProperties: target },
    workspace: target.properties.workspace,
    permissions: { type: 'array', items: appPermission },
  },
} as const;

/** The merged app, after includes and a target: what `bundle deploy` sends. */
export const deployedAppSchema = {
  ...app,
  required: ['name', 'source_code_path', 'resources'],
  properties: { ...app.properties, resources: { type: 'array', minItems: 1, maxItems: 1, items: appResource } },
} as const;

/** app.yaml: `command` (a sequence, never a shell string) and `env`. */
export const appYamlSchema = {
  type: 'object',
  additionalProperties: false,
  properties: { command, env: { type: 'array', items: envVar('valueFrom') } },
} as const;
