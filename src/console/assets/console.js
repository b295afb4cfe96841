// Keeps the parts of a page marked data-live current: every 2 s their fragment is fetched
// again and, when it changed, put in place (so the overview follows upstreams' states).
'use strict';
document.querySelectorAll('[data-live]').forEach((part) => {
  const url = part.getAttribute('data-live');
  let last = part.innerHTML;
  const refresh = async () => {
    try {
      const r = await fetch(url, { credentials: 'same-origin', headers: { accept: 'text/html' } });
      if (r.ok) {
        const html = await r.text();
        if (html !== last) {
          part.innerHTML = html;
          last = html;
        }
      }
    } catch (_) {
      // Offline for a moment: the next round tries again.
    }
    setTimeout(refresh, 2000);
  };
  setTimeout(refresh, 2000);
});
