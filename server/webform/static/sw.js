// The officer web form's service worker (scope /f/). The server writes BUILD (a digest of the
// browser files) and SHELL (their URLs) in front of this file.
//
// - The shell (renderer, Vue, our scripts, icons) is precached at install into a cache named
//   after BUILD; a new build replaces that cache and only that one.
// - Forms (pages, XML, media) live in "jebol-forms", which no update ever deletes: the form
//   list refreshes it while online (a new form version replaces the cached copy).
// - Pages and unversioned form URLs: network first, the cached copy when offline (or when the
//   network is too slow and a copy exists). URLs with ?v=<md5> are one version: cache first.
// - Only GET requests of this origin are touched; submissions go straight to the network.
/* global BUILD, SHELL */

const SHELL_CACHE = `jebol-shell-${BUILD}`;
const FORMS_CACHE = 'jebol-forms';
const SLOW_NETWORK_MS = 6000;

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(SHELL_CACHE).then((cache) => cache.addAll(SHELL))
    .then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith('jebol-shell-') && name !== SHELL_CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (url.pathname.startsWith('/static/webform/')) {
    event.respondWith(shellFirst(request, url));
  } else if (url.pathname.startsWith('/f/') && url.pathname !== '/f/sw.js') {
    event.respondWith(url.searchParams.has('v') ? cacheFirst(request)
      : networkFirst(request, url));
  }
});

// A page cached under an older build still names that build's URLs: the same file of the
// current build answers (the renderer's files refer to each other relatively).
async function shellFirst(request, url) {
  const hit = await caches.match(request);
  if (hit) return hit;
  const parts = url.pathname.split('/');  // ['', 'static', 'webform', build, ...name]
  if (parts[3] !== BUILD) {
    parts[3] = BUILD;
    const current = await caches.match(new URL(parts.join('/'), url.origin).href);
    if (current) return current;
  }
  const response = await fetch(request);
  if (response.ok && parts[3] === BUILD) {
    const copy = response.clone();
    caches.open(SHELL_CACHE).then((cache) => cache.put(request, copy)).catch(() => {});
  }
  return response;
}

async function cacheFirst(request) {
  const hit = await caches.match(request);
  if (hit) return hit;
  const response = await fetch(request);
  if (response.ok) {
    const copy = response.clone();
    caches.open(FORMS_CACHE).then((cache) => cache.put(request, copy)).catch(() => {});
  }
  return response;
}

function alternatives(url) {
  // /f/{key} and /f/{key}/ are the same page.
  const other = new URL(url.href);
  other.search = '';
  other.pathname = url.pathname.endsWith('/') ? url.pathname.slice(0, -1) : `${url.pathname}/`;
  return [url.href.split('#')[0], other.href];
}

async function cached(url) {
  for (const candidate of alternatives(url)) {
    const hit = await caches.match(candidate, { ignoreVary: true });
    if (hit) return hit;
  }
  return null;
}

async function networkFirst(request, url) {
  const network = fetch(request).then(async (response) => {
    if (response.ok && response.type === 'basic') {
      const cache = await caches.open(FORMS_CACHE);
      await cache.put(url.href.split('#')[0], response.clone());
    }
    return response;
  });
  const fallback = cached(url);
  let timer;
  const slow = new Promise((resolve) => {
    timer = setTimeout(() => fallback.then((hit) => hit && resolve(hit)), SLOW_NETWORK_MS);
  });
  try {
    return await Promise.race([network, slow]);
  } catch (error) {
    const hit = await fallback;
    if (hit) return hit;
    throw error;
  } finally {
    clearTimeout(timer);
  }
}
