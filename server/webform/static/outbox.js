// The phone's outbox and drafts (IndexedDB through idb-keyval).
//
// A finished form becomes a record: the submission XML's exact bytes and every attachment
// as bytes (FormData cannot be stored; ArrayBuffers can, everywhere). Records are sent one
// at a time to the OpenRosa submission URL of the officer's key, split into several POSTs
// when larger than X-OpenRosa-Accept-Content-Length (as ODK Collect does). A record is never
// dropped because an upload failed:
//   - no connection, a timeout, 408, 429 or 5xx: kept, retried with exponential backoff
//     (capped at 5 minutes) on its own timer, on the `online` event and when the page shows;
//   - any other 4xx: kept and marked `failed` with the server's message, for the officer
//     (send again by hand, or download it as a ZIP);
//   - 201: sent. A 409 naming the record's instanceID means the server has it already
//     (a retry of a record whose first answer was lost): also sent, never a second copy.
// The server keys submissions by instanceID, and a record keeps its XML bytes unchanged,
// so a re-sent record can never become a second submission.

import { createStore, get, set, del, values, update } from 'idb-keyval';

const outboxStore = createStore('jebol-outbox', 'records');
const draftStore = createStore('jebol-drafts', 'drafts');

export const BACKOFF_BASE_MS = 2000;
export const BACKOFF_MAX_MS = 5 * 60 * 1000;
const HEAD_TIMEOUT_MS = 30000;
const POST_TIMEOUT_MS = 180000;
const DEFAULT_LIMIT = 10 * 1024 * 1024;  // Collect's assumption when the header is missing
const MAX_FILES_PER_POST = 100;
const PART_OVERHEAD = 512;  // multipart headers of one part, generously
const KEEP_SENT = 30;  // sent records shown as history (without their bytes)

export const XML_PART = 'xml_submission_file';

// ---- the instance XML --------------------------------------------------------------------------

export function instanceInfo(xmlText) {
  const doc = new DOMParser().parseFromString(xmlText, 'text/xml');
  const pick = (name) => {
    const found = doc.getElementsByTagNameNS('*', name);
    return found.length ? found[0].textContent.trim() : '';
  };
  return { instanceID: pick('instanceID'), deprecatedID: pick('deprecatedID'),
           instanceName: pick('instanceName') };
}

// A reopened draft is loaded in the renderer's edit mode, which adds meta/deprecatedID: a
// draft was never on the server, so that element goes before the record is kept.
export function withoutDeprecatedID(xmlText) {
  return xmlText.replace(/<(\w+:)?deprecatedID(\s[^>]*)?\/>/g, '')
                .replace(/<(\w+:)?deprecatedID(\s[^>]*)?>[^<]*<\/(\w+:)?deprecatedID>/g, '');
}

// FormData (the renderer's payload) -> storable parts. The XML is kept as bytes.
export async function payloadParts(formData, { dropDeprecated = false } = {}) {
  let xmlText = null;
  const files = [];
  for (const [name, value] of formData.entries()) {
    if (name === XML_PART) {
      xmlText = typeof value === 'string' ? value : await value.text();
    } else if (typeof value !== 'string') {
      files.push({ name, filename: value.name || name, type: value.type || '',
                   data: await value.arrayBuffer() });
    }
  }
  if (xmlText === null) throw new Error('no ' + XML_PART);
  if (dropDeprecated) xmlText = withoutDeprecatedID(xmlText);
  const xml = new TextEncoder().encode(xmlText).buffer;
  return { xmlText, xml, files };
}

// ---- records -----------------------------------------------------------------------------------

export async function enqueue(record) {
  const now = Date.now();
  const existing = await get(record.id, outboxStore);
  if (existing && existing.status === 'sent') return existing;  // never twice
  const stored = { status: 'pending', attempts: 0, nextAttemptAt: 0, error: null,
                   createdAt: now, updatedAt: now, ...record };
  await set(record.id, stored, outboxStore);
  announce(stored);
  return stored;
}

export async function listRecords(key) {
  const all = await values(outboxStore);
  return all.filter((r) => !key || r.key === key).sort((a, b) => a.createdAt - b.createdAt);
}

export async function getRecord(id) { return get(id, outboxStore); }

export async function removeRecord(id) {
  await del(id, outboxStore);
  announce({ id, status: 'removed' });
}

async function patch(id, changes) {
  let result = null;
  await update(id, (old) => {
    if (!old) return old;
    result = { ...old, ...changes, updatedAt: Date.now() };
    return result;
  }, outboxStore);
  if (result) announce(result);
  return result;
}

function announce(record) {
  window.dispatchEvent(new CustomEvent('wf-outbox', { detail: record }));
}

export async function pendingCount(key) {
  return (await listRecords(key)).filter((r) => r.status !== 'sent').length;
}

async function pruneSent() {
  const sent = (await values(outboxStore)).filter((r) => r.status === 'sent')
    .sort((a, b) => b.updatedAt - a.updatedAt);
  for (const old of sent.slice(KEEP_SENT)) await del(old.id, outboxStore);
}

// ---- drafts ------------------------------------------------------------------------------------

export async function saveDraft(draft) {
  await set(draft.id, { ...draft, savedAt: Date.now() }, draftStore);
}
export async function getDraft(id) { return get(id, draftStore); }
export async function removeDraft(id) { await del(id, draftStore); }
export async function listDrafts(key) {
  return (await values(draftStore)).filter((d) => !key || d.key === key)
    .sort((a, b) => b.savedAt - a.savedAt);
}

// ---- sending -----------------------------------------------------------------------------------

const HEADERS = { 'X-OpenRosa-Version': '1.0' };

async function fetchWithTimeout(url, options, ms) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), ms);
  try {
    return await fetch(url, { ...options, signal: controller.signal, cache: 'no-store',
                              credentials: 'omit', redirect: 'error' });
  } finally {
    clearTimeout(timer);
  }
}

function serverMessage(text) {
  try {
    const doc = new DOMParser().parseFromString(text, 'text/xml');
    const message = doc.getElementsByTagNameNS('*', 'message');
    if (message.length && message[0].textContent.trim()) return message[0].textContent.trim();
  } catch (_) { /* not XML */ }
  return text.trim().slice(0, 300);
}

// Batches of attachments, each fitting with the XML under the server's limit (a file too big
// for any batch goes alone; the server then answers 413 and the record is kept, marked).
export function batches(files, xmlSize, limit) {
  const budget = limit - xmlSize - PART_OVERHEAD;
  const result = [];
  let current = [];
  let size = 0;
  for (const file of files) {
    const cost = file.data.byteLength + PART_OVERHEAD;
    if (current.length && (size + cost > budget || current.length >= MAX_FILES_PER_POST)) {
      result.push(current);
      current = [];
      size = 0;
    }
    current.push(file);
    size += cost;
  }
  if (current.length || !result.length) result.push(current);
  return result;
}

function retryable(status) {
  return status === 408 || status === 429 || status >= 500;
}

// One record, all its POSTs. Returns {outcome: 'sent'|'duplicate'|'retry'|'failed', ...}.
async function sendRecord(record) {
  let limit = DEFAULT_LIMIT;
  let head;
  try {
    head = await fetchWithTimeout(record.submissionUrl, { method: 'HEAD', headers: HEADERS },
                                  HEAD_TIMEOUT_MS);
  } catch (error) {
    return { outcome: 'retry', status: 0, message: null };
  }
  if (head.status !== 204 && !head.ok) {
    return { outcome: retryable(head.status) ? 'retry' : 'failed', status: head.status,
             message: null };
  }
  const advertised = parseInt(head.headers.get('X-OpenRosa-Accept-Content-Length') || '', 10);
  if (advertised > 0) limit = advertised;

  const groups = batches(record.files, record.xml.byteLength, limit);
  for (let index = 0; index < groups.length; index += 1) {
    const body = new FormData();
    body.append(XML_PART, new Blob([record.xml], { type: 'text/xml' }), 'submission.xml');
    for (const file of groups[index]) {
      body.append(file.name, new Blob([file.data], { type: file.type || 'application/octet-stream' }),
                  file.name);
    }
    if (index < groups.length - 1) body.append('*isIncomplete*', 'yes');
    let response;
    try {
      response = await fetchWithTimeout(record.submissionUrl,
                                        { method: 'POST', headers: HEADERS, body },
                                        POST_TIMEOUT_MS);
    } catch (error) {
      return { outcome: 'retry', status: 0, message: null };
    }
    if (response.status === 201) continue;
    const text = await response.text().catch(() => '');
    if (response.status === 409 && record.id && text.includes(record.id)) {
      return { outcome: 'duplicate', status: 409, message: serverMessage(text) };
    }
    return { outcome: retryable(response.status) ? 'retry' : 'failed', status: response.status,
             message: serverMessage(text) };
  }
  return { outcome: 'sent', status: 201, message: null };
}

export function backoff(attempts) {
  return Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.max(0, attempts - 1));
}

let running = null;
let timer = null;

// Send what is due, one record at a time. `force` also sends failed records and records
// still waiting for their retry time (the "send now" button).
export function sync({ force = false, only = null } = {}) {
  if (running) return running.then(() => (force ? sync({ force, only }) : null));
  const work = async () => {
    if (navigator.locks && navigator.locks.request) {
      // One tab at a time: two tabs must never send the same record together.
      return navigator.locks.request('jebol-outbox', { ifAvailable: true },
                                     (lock) => (lock ? drain(force, only) : null));
    }
    return drain(force, only);
  };
  running = work().finally(() => { running = null; schedule(); });
  return running;
}

async function drain(force, only) {
  const records = (await listRecords(null)).filter((r) => r.status !== 'sent' &&
                                                         (!only || r.id === only));
  for (const record of records) {
    // 'sending' here was left by a page closed mid-upload (this tab holds the lock).
    const due = force || record.status === 'sending' ||
      (record.status === 'pending' && (record.nextAttemptAt || 0) <= Date.now());
    if (!due) continue;
    await patch(record.id, { status: 'sending' });
    const fresh = await getRecord(record.id);
    const result = await sendRecord(fresh);
    const attempts = (fresh.attempts || 0) + 1;
    if (result.outcome === 'sent' || result.outcome === 'duplicate') {
      await patch(record.id, { status: 'sent', duplicate: result.outcome === 'duplicate',
                               attempts, error: null, xml: null, files: [],
                               sentAt: Date.now() });
    } else if (result.outcome === 'retry') {
      await patch(record.id, { status: 'pending', attempts, lastStatus: result.status,
                               error: result.message || '', nextAttemptAt: Date.now() + backoff(attempts) });
      break;  // the server or the network is not there: the rest would fail the same way
    } else {
      await patch(record.id, { status: 'failed', attempts, lastStatus: result.status,
                               error: result.message || '', nextAttemptAt: 0 });
    }
  }
  await pruneSent();
}

function schedule() {
  if (timer) clearTimeout(timer);
  timer = null;
  listRecords(null).then((records) => {
    const waiting = records.filter((r) => r.status === 'pending' || r.status === 'sending');
    if (!waiting.length) return;
    const next = Math.min(...waiting.map((r) => r.nextAttemptAt || 0));
    timer = setTimeout(() => sync(), Math.max(250, next - Date.now()));
  }).catch(() => {});
}

// Page load, the browser coming back online, the page being shown again.
export function startAutoSync() {
  const run = () => { sync().catch(() => {}); };
  window.addEventListener('online', run);
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') run();
  });
  run();
}

// ---- a record as a ZIP (stored, no compression), for records that cannot be sent ---------------

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n += 1) {
    let c = n;
    for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes) {
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i += 1) crc = CRC_TABLE[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

export function zip(entries) {  // [{name, data: ArrayBuffer|Uint8Array}] -> Blob
  const encoder = new TextEncoder();
  const now = new Date();
  const time = (now.getHours() << 11) | (now.getMinutes() << 5) | Math.floor(now.getSeconds() / 2);
  const date = ((now.getFullYear() - 1980) << 9) | ((now.getMonth() + 1) << 5) | now.getDate();
  const chunks = [];
  const central = [];
  let offset = 0;
  for (const entry of entries) {
    const name = encoder.encode(entry.name);
    const data = entry.data instanceof Uint8Array ? entry.data : new Uint8Array(entry.data);
    const crc = crc32(data);
    const local = new DataView(new ArrayBuffer(30));
    local.setUint32(0, 0x04034b50, true);
    local.setUint16(4, 20, true);
    local.setUint16(6, 0x0800, true);  // UTF-8 names
    local.setUint16(8, 0, true);  // stored
    local.setUint16(10, time, true);
    local.setUint16(12, date, true);
    local.setUint32(14, crc, true);
    local.setUint32(18, data.length, true);
    local.setUint32(22, data.length, true);
    local.setUint16(26, name.length, true);
    local.setUint16(28, 0, true);
    chunks.push(local.buffer, name, data);
    const head = new DataView(new ArrayBuffer(46));
    head.setUint32(0, 0x02014b50, true);
    head.setUint16(4, 20, true);
    head.setUint16(6, 20, true);
    head.setUint16(8, 0x0800, true);
    head.setUint16(10, 0, true);
    head.setUint16(12, time, true);
    head.setUint16(14, date, true);
    head.setUint32(16, crc, true);
    head.setUint32(20, data.length, true);
    head.setUint32(24, data.length, true);
    head.setUint16(28, name.length, true);
    head.setUint32(42, offset, true);
    central.push(head.buffer, name);
    offset += 30 + name.length + data.length;
  }
  const centralSize = central.reduce((n, part) => n + (part.byteLength ?? part.length), 0);
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true);
  end.setUint16(8, entries.length, true);
  end.setUint16(10, entries.length, true);
  end.setUint32(12, centralSize, true);
  end.setUint32(16, offset, true);
  return new Blob([...chunks, ...central, end.buffer], { type: 'application/zip' });
}

// The record as ODK Briefcase lays out an instance: <folder>/submission.xml + attachments.
export function recordZip(record) {
  const folder = (record.id || 'submission').replace(/[^A-Za-z0-9_-]+/g, '_');
  const entries = [{ name: `${folder}/submission.xml`, data: record.xml }];
  for (const file of record.files || []) {
    entries.push({ name: `${folder}/${file.name.replace(/[\\/]/g, '_')}`, data: file.data });
  }
  return { blob: zip(entries), filename: `${record.formId || 'form'}-${folder}.zip` };
}
