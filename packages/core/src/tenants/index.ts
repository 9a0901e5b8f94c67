export { buildPolicies, type ProfileDefinition, type Profiles } from "./build.js";
export { type ParseTenantConfigOptions, parseTenantConfig } from "./parse.js";
export {
  createTenantRegistry,
  type TenantRegistry,
  type TenantRegistryOptions,
} from "./registry.js";
export { type TenantConfig, type TenantEntry, tenantConfigSchema } from "./schema.js";
