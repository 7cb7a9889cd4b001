// schema/config.schema.json, generated from the tables in daemon/config/rules.ts so the defaults and
// descriptions editors show are the ones the daemon applies. `npm run schema` writes it;
// test/unit/config-schema.test.ts fails when the committed file differs.
import { CONFIG_DESCRIPTION, MODEL, MODEL_NAME_PATTERN, MODELS_DESCRIPTION, SCHEMA_KEY, TOP } from './rules';
import { isGroup, type Field, type Group, type JsonSchema } from './value-rules';

type AnyEntry = Field<unknown> | Group<unknown>;

/** The whole schema, as the JSON object the file holds. */
export function configSchema(): JsonSchema {
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'urn:slotwise:config',
    title: 'Slotwise config',
    description: CONFIG_DESCRIPTION,
    type: 'object',
    additionalProperties: false,
    properties: {
      $schema: fieldSchema(SCHEMA_KEY),
      ...propertiesOf(TOP),
      models: {
        description: MODELS_DESCRIPTION,
        type: 'object',
        default: {},
        propertyNames: { pattern: MODEL_NAME_PATTERN },
        additionalProperties: { $ref: '#/$defs/model' },
      },
    },
    $defs: { model: groupSchema(MODEL, false) },
  };
}

/** The file's text: two-space JSON and a final newline. */
export function configSchemaText(): string {
  return `${JSON.stringify(configSchema(), null, 2)}\n`;
}

function propertiesOf(fields: object): Record<string, JsonSchema> {
  const entries = Object.entries(fields) as [string, AnyEntry][];
  return Object.fromEntries(entries.map(([name, entry]) => [name, isGroup(entry) ? groupSchema(entry, true) : fieldSchema(entry)]));
}

/** `withDefault`: a group that may be left out shows the object its defaults make up. */
function groupSchema(group: Group<unknown>, withDefault: boolean): JsonSchema {
  const entries = Object.entries(group.fields) as [string, AnyEntry][];
  const required = entries.filter(([, e]) => !isGroup(e) && e.required).map(([name]) => name);
  const def = withDefault ? defaultOf(group) : undefined;
  return {
    description: group.description,
    type: 'object',
    additionalProperties: false,
    ...(required.length ? { required } : {}),
    ...(def === undefined ? {} : { default: def }),
    properties: propertiesOf(group.fields),
  };
}

function fieldSchema(field: Field<unknown>): JsonSchema {
  const def = staticDefault(field);
  return {
    description: field.description,
    ...field.rule.schema,
    ...(def === undefined ? {} : { default: def }),
    ...(field.examples ? { examples: field.examples } : {}),
  };
}

/** The defaults of a group's keys that have a fixed one; computed defaults depend on the file. */
function defaultOf(group: Group<unknown>): Record<string, unknown> {
  const entries = Object.entries(group.fields) as [string, AnyEntry][];
  const pairs = entries.map(([name, e]) => [name, isGroup(e) ? defaultOf(e) : staticDefault(e)] as const);
  return Object.fromEntries(pairs.filter(([, v]) => v !== undefined));
}

function staticDefault(field: Field<unknown>): unknown {
  return typeof field.def === 'function' ? undefined : field.def;
}
