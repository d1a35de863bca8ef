// The Kustomer sandbox's stored resources. Every resource is stored as {org, resource} under
// `rec:<type>:<id>`, in the one Durable Object's storage, so it survives a workerd restart.
import * as seed from "./seed.js";

// Storage takes at most 128 keys a call.
const KEYS_PER_CALL = 128;

/** The seeded org's resources, stored once (and again after `POST /reset`). */
export async function seedRecords(storage) {
  await putRecords(storage, seed.SEED_ORG, [...seed.users, ...seed.tags, ...seed.brands, ...seed.customers, ...seed.conversations]);
  await storage.put("seeded", true);
}

export async function putRecords(storage, org, resources) {
  const entries = resources.map((r) => [`rec:${r.type}:${r.id}`, { org, resource: r }]);
  for (let i = 0; i < entries.length; i += KEYS_PER_CALL) await storage.put(Object.fromEntries(entries.slice(i, i + KEYS_PER_CALL)));
}

/** The stored {org, resource} of a type and id; with `org`, only when it is that org's. */
export async function record(storage, type, id, org) {
  const rec = await storage.get(`rec:${type}:${id}`);
  return rec && (org === undefined || rec.org === org) ? rec : undefined;
}

/** Deletes the keys, however many. */
export async function deleteKeys(storage, keys) {
  for (let i = 0; i < keys.length; i += KEYS_PER_CALL) await storage.delete(keys.slice(i, i + KEYS_PER_CALL));
}

/** Deletes every key under a prefix. */
export async function deletePrefix(storage, prefix) {
  await deleteKeys(storage, [...(await storage.list({ prefix })).keys()]);
}
