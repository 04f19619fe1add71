// The customer's ticket on a phone: live position, "N people ahead", and
// "your turn: Counter 3" (the counter's name, which the page carries) with a
// vibration. No staff token: the link's key (`?k=`) opens this one ticket.
// Phones freeze background tabs, so the page re-reads at once when it comes
// back to the foreground, and otherwise every few seconds while visible; no
// push notifications needed.
import { t, el, fill, main, data, api, waitText, timeText } from './common.js';

const key = new URLSearchParams(location.search).get('k') || '';
const path = `/api/v1/branches/${data.branch}/tickets/${data.ticket}?k=${encodeURIComponent(key)}`;
const POLL_MS = 5000;
const COUNTERS = JSON.parse(data.counters || '{}');
const VIBRATED = `turnus.vibrated.${data.branch}.${data.ticket}`;

const ui = {
  card: el('section', { class: 'phone-card', 'aria-labelledby': 'phone-number-caption' }),
  connection: el('p', { class: 'connection', role: 'status', 'aria-live': 'polite', id: 'phone-connection' }),
};
let timer = null;

function render(ticket) {
  const parts = [
    el('h1', { id: 'phone-number-caption', class: 'ticket-caption', text: t('phone_your_number') }),
    el('p', { class: 'ticket-number', id: 'phone-number', text: ticket.number }),
  ];
  const status = el('div', { class: `phone-status status-${ticket.status}`, id: 'phone-status', 'aria-live': 'polite' });
  if (ticket.status === 'waiting') {
    const ahead = Math.max(0, (ticket.position || 1) - 1);
    fill(status,
      el('p', { class: 'phone-ahead', id: 'phone-ahead', text: ahead === 0 ? t('ahead_none') : t('ahead_n', { n: ahead }) }),
      el('p', {}, t('estimated_wait'), ' ', el('strong', { text: waitText(ticket.estimated_wait_s) })));
  } else if (ticket.status === 'called') {
    fill(status,
      el('p', { class: 'phone-turn', id: 'phone-turn' },
        el('span', { 'aria-hidden': 'true', text: '🔔 ' }), t('phone_your_turn', { counter: COUNTERS[ticket.counter] || ticket.counter })));
    const seen = `${ticket.called_at}`;
    if (sessionStorage.getItem(VIBRATED) !== seen) {
      sessionStorage.setItem(VIBRATED, seen);
      if (navigator.vibrate) navigator.vibrate([300, 150, 300, 150, 300]);
    }
  } else {
    fill(status, el('p', { class: 'phone-done', text: t(`phone_status_${ticket.status}`) }));
  }
  parts.push(status, el('p', { class: 'hint', text: t('phone_issued_at', { time: timeText(ticket.issued_at) }) }));
  fill(ui.card, parts);
  document.title = `${ticket.number} · ${t('ticket_title')}`;
}

function connection(state) {
  ui.connection.dataset.state = state;
  const [icon, text] = state === 'live' ? ['●', t('conn_live')] : ['⟳', t('conn_reconnecting')];
  fill(ui.connection, el('span', { 'aria-hidden': 'true', text: `${icon} ` }), text);
}

async function refresh() {
  clearTimeout(timer);
  let finished = false;
  try {
    const ticket = await api(null, null, 'GET', path);
    render(ticket);
    connection('live');
    finished = ticket.status !== 'waiting' && ticket.status !== 'called';
  } catch (e) {
    if (e.status === 404) {
      fill(ui.card, el('h1', { text: t('phone_unknown') }));
      return;
    }
    connection('reconnecting');
  }
  if (!finished && document.visibilityState === 'visible') timer = setTimeout(refresh, POLL_MS);
}

fill(main, ui.card, ui.connection);
document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'visible') refresh(); });
window.addEventListener('online', refresh);
window.addEventListener('pageshow', (event) => { if (event.persisted) refresh(); });
refresh();
