// The room's chat: messages arrive as `chat` room events (the last 50 again to a page that
// joins late, right after the roster) and are shown as text only — `textContent`, never
// HTML, whatever a message holds. Sending is a POST tied to the page's WHIP session.

const MAX_SHOWN = 200;

/**
 * Wires the chat panel: `log` (a role="log" element), `form` with its text input, `status` for
 * errors in words. `send(text)` POSTs and resolves to the Response. `onUnread(n)` is told how
 * many messages arrived while the panel was hidden (`isOpen()` false).
 */
export function chatPanel({ log, form, input, status, send, isOpen, onUnread }) {
  const seen = new Set(); // a resent history after an EventSource reconnect is not shown twice
  let unread = 0;

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    status.textContent = '';
    try {
      const res = await send(text);
      if (res.status === 204 || res.status === 200) { input.value = ''; return; }
      const body = (await res.text()).trim();
      status.textContent = res.status === 429
        ? `Slow down: you can send again in ${res.headers.get('Retry-After') || 'a few'} s.`
        : `Not sent (${res.status}): ${body || res.statusText}`;
    } catch (err) { status.textContent = `Not sent: ${err.message}`; }
  });

  return {
    /** Shows one `chat` event { id, name, text, at } from `me`'s point of view. */
    add(m, me) {
      const key = `${m.id}|${m.at}|${m.text}`;
      if (seen.has(key)) return;
      seen.add(key);
      const li = document.createElement('div');
      li.className = 'msg';
      if (m.id === me) li.classList.add('mine');
      const who = document.createElement('span');
      who.className = 'who';
      who.textContent = m.id === me ? `${m.name} (you)` : String(m.name ?? '');
      const when = document.createElement('time');
      const at = new Date(Number(m.at) || Date.now());
      when.dateTime = at.toISOString();
      when.textContent = at.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
      const text = document.createElement('p');
      text.className = 'text';
      text.textContent = String(m.text ?? '');
      li.append(who, ' ', when, text);
      const stick = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
      log.appendChild(li);
      while (log.children.length > MAX_SHOWN) log.firstElementChild.remove();
      if (stick) log.scrollTop = log.scrollHeight;
      if (!isOpen() && m.id !== me) { unread += 1; onUnread(unread); }
    },
    /** The panel was opened: nothing unread any more. */
    read() { unread = 0; onUnread(0); log.scrollTop = log.scrollHeight; },
  };
}
