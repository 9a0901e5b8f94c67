export { classifyError } from "./classify-error.js";
export { PostgresStore, type PostgresStoreOptions, postgresStore } from "./store.js";
