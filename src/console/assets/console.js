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

// The playground's call form: posted asking for an event stream, so progress shows while the
// tool runs; the result section (rendered by the server, as without script) then replaces it.
const call = document.getElementById('call');
if (call) {
  call.addEventListener('submit', async (event) => {
    event.preventDefault();
    const progress = document.getElementById('progress');
    const result = document.getElementById('result');
    const button = call.querySelector('button[type=submit]');
    button.disabled = true;
    result.replaceChildren();
    const bar = document.createElement('progress');
    bar.setAttribute('aria-label', 'Progress of the call');
    const status = document.createElement('p');
    status.textContent = 'Calling…';
    progress.replaceChildren(bar, status);
    const show = (kind, data) => {
      if (kind === 'progress') {
        const p = JSON.parse(data);
        if (typeof p.total === 'number') {
          bar.max = p.total;
          bar.value = p.progress;
        }
        status.textContent = `${p.progress}${p.total !== undefined ? ' / ' + p.total : ''}${p.message ? ': ' + p.message : ''}`;
      } else if (kind === 'result') {
        progress.replaceChildren();
        result.innerHTML = data;
      }
    };
    try {
      const r = await fetch(call.action, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { accept: 'text/event-stream' },
        body: new URLSearchParams(new FormData(call)),
      });
      if (!r.ok || !(r.headers.get('content-type') || '').startsWith('text/event-stream')) {
        throw new Error(`the console answered ${r.status}; reload the page`);
      }
      const reader = r.body.getReader();
      const decoder = new TextDecoder();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let kind = 'message';
          const data = [];
          for (const line of block.split('\n')) {
            if (line.startsWith('event:')) kind = line.slice(6).trim();
            else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
          }
          show(kind, data.join('\n'));
        }
      }
    } catch (e) {
      progress.replaceChildren();
      const p = document.createElement('p');
      p.className = 'error';
      p.setAttribute('role', 'alert');
      p.textContent = `The call failed: ${e.message}`;
      result.replaceChildren(p);
    }
    button.disabled = false;
  });
}
