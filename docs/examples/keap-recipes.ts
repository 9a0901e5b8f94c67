// The "Compose into your own client" recipes of docs/keap.md, compiled by `npm run typecheck` and
// run against the Keap simulator by keap-recipes.test.ts. Each takes a client and a base URL.
import { type KeapClient, parseKeapHeaders } from "@sluice/adapter-keap";
import axios from "axios";
import got from "got";
import ky from "ky";
import { fetch as undiciFetch } from "undici";

// undici: its own fetch as the one keap.fetch sends with.
export function undiciOptions() {
  return { fetch: undiciFetch };
}

// ky: keap.fetch as its fetch, ky's own retries off so backoff happens once, in keap.fetch.
export function kyClient(keap: KeapClient, baseUrl: string) {
  return ky.create({ prefixUrl: baseUrl, fetch: keap.fetch, retry: 0, throwHttpErrors: false });
}

// axios 1.12 and later: the fetch adapter takes env.fetch.
export function axiosClient(keap: KeapClient, baseUrl: string) {
  return axios.create({
    baseURL: baseUrl,
    adapter: "fetch",
    env: { fetch: keap.fetch },
    validateStatus: () => true,
  });
}

// got takes no fetch function: wait for capacity before each request and reconcile after it.
// (No 429 retry or refund here: for those, send with keap.fetch.)
export function gotClient(keap: KeapClient, baseUrl: string) {
  return got.extend({
    prefixUrl: baseUrl,
    throwHttpErrors: false,
    retry: { limit: 0 },
    hooks: {
      beforeRequest: [
        async () => {
          await keap.limiter.wait(keap.key);
        },
      ],
      afterResponse: [
        async (response) => {
          await keap.limiter.reconcile(keap.key, parseKeapHeaders(response.headers));
          return response;
        },
      ],
    },
  });
}
