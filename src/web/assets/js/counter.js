// The counter terminal: the current ticket, call / recall / finish /
// no-show / transfer, calling a ticket by its number, the queues, live.
// Keyboard: N next, R recall, F finish, X no-show, T transfer, / number.
import {
  t, el, fill, main, data, Tokens, api, withTokens, loadBranchOrExplain, showProblem, LiveStream,
  connectionBadge, serviceName, durationText, isAuthError, reauth, ApiError,
} from './common.js';

const branchId = data.branch;
const counterId = data.counter;
const tokens = new Tokens(['operator', 'display']);
const CURRENT_KEY = `turnus.counter.${branchId}.${counterId}`;
const base = `/api/v1/branches/${branchId}`;

let branch = null;
let current = null; // the ticket this counter is serving
// Counts the changes of `current`: a snapshot that started before an
// answer or an event arrived must not undo it with the older state it read.
let currentChanges = 0;
let busy = false;
const ui = {};

function counterConfig() {
  return branch.counters.find((c) => c.id === counterId);
}

function setCurrent(ticket) {
  currentChanges += 1;
  current = ticket && ticket.status === 'called' && ticket.counter === counterId ? ticket : null;
  if (current) localStorage.setItem(CURRENT_KEY, current.id);
  else localStorage.removeItem(CURRENT_KEY);
  renderCurrent();
}

function renderCurrent() {
  if (current) {
    fill(ui.current,
      el('p', { class: 'current-number', id: 'current-number', text: current.number }),
      el('p', { class: 'current-service', text: serviceName(branch, current.service) }));
  } else {
    fill(ui.current, el('p', { class: 'current-none', id: 'current-number', text: t('counter_no_current') }));
  }
  for (const button of [ui.recall, ui.finish, ui.noShow, ui.transfer]) button.disabled = busy || !current;
  ui.next.disabled = busy;
  // A button that just did its job and is now disabled would keep the
  // focus nowhere useful: hand it to "call next", the usual next step.
  if (!busy && document.activeElement && document.activeElement.disabled) ui.next.focus();
}

function say(message, kind = 'info') {
  fill(ui.message, kind === 'error' ? el('span', { 'aria-hidden': 'true', text: '⚠ ' }) : null, message);
  ui.message.className = `message ${kind}`;
}

async function act(label, request) {
  if (busy) return;
  busy = true;
  renderCurrent();
  try {
    await request();
  } catch (e) {
    if (isAuthError(e)) { reauth(tokens); return; }
    say(e instanceof ApiError && e.message ? e.message : t('network_error'), 'error');
  } finally {
    busy = false;
    renderCurrent();
  }
  refreshQueues();
}

const actions = {
  next: () => act('next', async () => {
    const ticket = await api(tokens, 'operator', 'POST', `${base}/counters/${counterId}/call`);
    document.body.dataset.lastCallAt = String(Date.now());
    setCurrent(ticket);
    say(ticket ? t('counter_called', { number: ticket.number }) : t('counter_nothing_waiting'));
  }),
  recall: () => act('recall', async () => {
    const ticket = await api(tokens, 'operator', 'POST', `${base}/counters/${counterId}/recall`);
    setCurrent(ticket);
    say(t('counter_recalled', { number: ticket.number }));
  }),
  finish: () => act('finish', async () => {
    const ticket = await api(tokens, 'operator', 'POST', `${base}/counters/${counterId}/finish`);
    setCurrent(null);
    say(t('counter_finished', { number: ticket.number }));
  }),
  noShow: () => act('no-show', async () => {
    const ticket = await api(tokens, 'operator', 'POST', `${base}/counters/${counterId}/no-show`);
    setCurrent(null);
    say(t('counter_no_showed', { number: ticket.number }));
  }),
  transfer: () => act('transfer', async () => {
    const service = ui.transferTo.value;
    const ticket = await api(tokens, 'operator', 'POST', `${base}/counters/${counterId}/transfer`, { service });
    setCurrent(null);
    say(t('counter_transferred', { number: ticket.number, service: serviceName(branch, service) }));
  }),
  byNumber: () => act('number', async () => {
    const number = ui.number.value.trim().toUpperCase();
    if (!number) { ui.number.focus(); return; }
    const ticket = await api(tokens, 'operator', 'POST', `${base}/counters/${counterId}/call`, { number });
    setCurrent(ticket);
    ui.number.value = '';
    say(t('counter_called', { number: ticket.number }));
  }),
};

function button(label, key, action, extra = {}) {
  return el('button', {
    type: 'button', class: `button ${extra.class || ''}`, 'aria-keyshortcuts': key, onclick: action, id: extra.id,
  }, label, ' ', el('kbd', { 'aria-hidden': 'true', text: key }));
}

function render() {
  const counter = counterConfig();
  const { badge, set } = connectionBadge();
  ui.setConnection = set;
  ui.current = el('div', { class: 'current', 'aria-live': 'polite' });
  ui.message = el('p', { class: 'message', role: 'status' });
  ui.next = button(t('counter_next'), 'N', actions.next, { class: 'primary big', id: 'call-next' });
  ui.recall = button(t('counter_recall'), 'R', actions.recall, { id: 'recall' });
  ui.finish = button(t('counter_finish'), 'F', actions.finish, { id: 'finish' });
  ui.noShow = button(t('counter_no_show'), 'X', actions.noShow, { id: 'no-show' });
  ui.transferTo = el('select', { id: 'transfer-to' },
    branch.services.map((s) => el('option', { value: s.id, text: s.name })));
  ui.transfer = button(t('counter_transfer'), 'T', actions.transfer, { id: 'transfer' });
  ui.number = el('input', {
    id: 'call-number', type: 'text', autocomplete: 'off', spellcheck: 'false', inputmode: 'text',
    pattern: '[A-Za-z]{1,2}[0-9]{1,10}', placeholder: 'A042', 'aria-keyshortcuts': '/',
  });
  const numberForm = el('form', { class: 'inline-form', id: 'call-number-form' },
    el('label', { for: 'call-number', text: t('counter_call_number') }), ui.number,
    el('button', { type: 'submit', class: 'button', id: 'call-number-button', text: t('counter_call') }));
  numberForm.addEventListener('submit', (event) => { event.preventDefault(); actions.byNumber(); });
  ui.queues = el('tbody', { id: 'queues' });
  fill(main,
    el('header', { class: 'bar' },
      el('h1', {}, el('span', { id: 'counter-name', text: counter.name }), el('span', { class: 'sub', text: ` · ${branch.name}` })),
      badge),
    el('div', { class: 'counter-layout' },
      el('section', { class: 'panel', 'aria-labelledby': 'current-title' },
        el('h2', { id: 'current-title', text: t('counter_current') }),
        ui.current,
        el('div', { class: 'counter-actions' }, ui.next, ui.recall, ui.finish, ui.noShow),
        el('div', { class: 'inline-form' },
          el('label', { for: 'transfer-to', text: t('counter_transfer_to') }), ui.transferTo, ui.transfer),
        numberForm,
        ui.message),
      el('section', { class: 'panel', 'aria-labelledby': 'queues-title' },
        el('h2', { id: 'queues-title', text: t('queues_title') }),
        el('table', { class: 'queues' },
          el('thead', {}, el('tr', {},
            el('th', { scope: 'col', text: t('queue_service') }),
            el('th', { scope: 'col', class: 'num', text: t('queue_waiting') }),
            el('th', { scope: 'col', class: 'num', text: t('queue_longest') }))),
          ui.queues),
        el('p', { class: 'hint', text: t('counter_shortcuts') }))));
  renderCurrent();
}

async function refreshQueues() {
  let queues;
  try {
    queues = await api(tokens, 'display', 'GET', `${base}/queues`);
  } catch (e) {
    return;
  }
  const mine = new Set(counterConfig().services.map((s) => s.service));
  fill(ui.queues, queues.map((q) => {
    const target = (branch.services.find((s) => s.id === q.service) || {}).target_wait_s;
    const late = target && q.longest_wait_s > target;
    return el('tr', { 'data-service': q.service, class: mine.has(q.service) ? 'mine' : null },
      el('th', { scope: 'row' }, serviceName(branch, q.service), mine.has(q.service) ? el('span', { class: 'tag', text: t('queue_mine') }) : null),
      el('td', { class: 'num waiting', text: String(q.waiting) }),
      el('td', { class: `num ${late ? 'late' : ''}` },
        late ? el('span', { class: 'late-mark', text: `⚠ ${t('over_target')} ` }) : null,
        durationText(q.longest_wait_s)));
  }));
}

async function snapshot() {
  // The board's latest call at this counter, else the one this browser
  // remembers (a long service may have left the board's last ten). What it
  // read is older than any answer or event that arrived meanwhile.
  const changes = currentChanges;
  const stillNewest = () => currentChanges === changes;
  const board = await api(tokens, 'display', 'GET', `${base}/display`);
  const latest = (board.called || []).find((c) => c.counter === counterId);
  const remembered = (latest && latest.id) || localStorage.getItem(CURRENT_KEY);
  if (remembered) {
    try {
      const ticket = await api(tokens, 'display', 'GET', `${base}/tickets/${remembered}`);
      if (stillNewest()) setCurrent(ticket);
    } catch (e) {
      if (isAuthError(e)) throw e;
      if (e.status === 404 && stillNewest()) setCurrent(null);
    }
  }
  await refreshQueues();
}

let refreshTimer = null;
function onEvent(name, ticket) {
  if (current && ticket.id === current.id && name !== 'ticket-called' && name !== 'ticket-recalled') setCurrent(null);
  if ((name === 'ticket-called' || name === 'ticket-recalled') && ticket.counter === counterId) setCurrent(ticket);
  if (name === 'config-changed') { location.reload(); return; }
  // Many events at once (a busy branch): one queue read for them all.
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(refreshQueues, 150);
}

function shortcuts(event) {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const typing = ['INPUT', 'SELECT', 'TEXTAREA'].includes(event.target.tagName);
  if (typing) {
    if (event.key === 'Escape') event.target.blur();
    return;
  }
  const key = event.key.toLowerCase();
  const map = { n: actions.next, r: actions.recall, f: actions.finish, x: actions.noShow };
  if (map[key]) { event.preventDefault(); map[key](); }
  else if (key === 't') { event.preventDefault(); ui.transferTo.focus(); }
  else if (key === '/') { event.preventDefault(); ui.number.focus(); }
}

withTokens(tokens, async () => {
  branch = await loadBranchOrExplain(tokens, branchId);
  if (!branch) return;
  if (!counterConfig()) { showProblem(t('unknown_counter', { counter: counterId })); return; }
  document.title = `${counterConfig().name} · ${branch.name}`;
  render();
  document.addEventListener('keydown', shortcuts);
  new LiveStream({
    tokens, path: `${base}/events`, snapshot, onEvent,
    onState: (state) => { ui.setConnection(state); if (state === 'unauthorized') reauth(tokens); },
  }).start();
  setInterval(refreshQueues, 15000);
});
