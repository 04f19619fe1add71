// The display board: "A042 → Counter 3" as calls happen (live events), the
// last calls, a chime and a spoken announcement, the branch's player
// playlist beside it (`?player=<id>`). Reconnects by itself and re-reads the
// board on every reconnect.
import {
  t, el, fill, main, data, Tokens, withTokens, loadBranch, loadBranchOrExplain, api, LiveStream,
  connectionBadge, counterName, reauth, timeText,
} from './common.js';
import { Announcer } from './sound.js';
import { PlaylistLoop } from './playlist.js';

const branchId = data.branch;
const tokens = new Tokens(['display']);
const base = `/api/v1/branches/${branchId}`;
const playerId = new URLSearchParams(location.search).get('player');
const announcer = new Announcer();
const SHOWN = 10;

let branch = null;
let calls = []; // newest first: {number, counter, called_at}
const ui = {};

function counterLabel(id) { return counterName(branch, id); }

function render() {
  const [latest, ...earlier] = calls;
  if (latest) {
    fill(ui.now,
      el('p', { class: 'now-number', id: 'now-number', text: latest.number }),
      el('p', { class: 'now-arrow', 'aria-hidden': 'true', text: '→' }),
      el('p', { class: 'now-counter', id: 'now-counter', text: counterLabel(latest.counter) }));
  } else {
    fill(ui.now, el('p', { class: 'now-empty', text: t('display_waiting_first') }));
  }
  fill(ui.recent, earlier.slice(0, SHOWN - 1).map((call) => el('li', { 'data-number': call.number },
    el('span', { class: 'recent-number', text: call.number }),
    el('span', { class: 'recent-counter', text: counterLabel(call.counter) }),
    el('span', { class: 'recent-time', text: timeText(call.called_at) }))));
}

function flash() {
  ui.now.classList.remove('flash');
  void ui.now.offsetWidth; // restart the animation
  ui.now.classList.add('flash');
}

async function snapshot() {
  const board = await api(tokens, 'display', 'GET', `${base}/display`);
  calls = board.called || [];
  render();
}

function onEvent(name, ticket) {
  if (name === 'config-changed') {
    loadBranch(tokens, branchId).then((b) => { branch = b; render(); }).catch(() => {});
    return;
  }
  if (name !== 'ticket-called' && name !== 'ticket-recalled') return;
  const entry = { number: ticket.number, counter: ticket.counter, called_at: new Date().toISOString() };
  calls = [entry, ...calls.filter((c) => c.number !== ticket.number)].slice(0, SHOWN);
  render();
  // When this page showed the call, for whoever measures call → board.
  ui.now.dataset.shownAt = String(Date.now());
  flash();
  const label = counterLabel(ticket.counter);
  const spoken = t('announce', { number: ticket.number, counter: label });
  fill(ui.spoken, spoken);
  announcer.announce(ticket.number, label, spoken);
}

function soundButton() {
  if (!announcer.prepare()) {
    const button = el('button', { type: 'button', class: 'button primary sound-button', id: 'enable-sound' },
      el('span', { 'aria-hidden': 'true', text: '♪ ' }), t('display_enable_sound'));
    button.addEventListener('click', async () => {
      if (await announcer.enable()) {
        button.remove();
        announcer.chime();
      }
    });
    return button;
  }
  return null;
}

function layout() {
  const { badge, set } = connectionBadge();
  ui.setConnection = set;
  ui.now = el('div', { class: 'now', id: 'now' });
  ui.recent = el('ol', { class: 'recent', id: 'recent' });
  ui.spoken = el('p', { class: 'visually-hidden', 'aria-live': 'assertive', id: 'spoken' });
  ui.clock = el('p', { class: 'clock', 'aria-hidden': 'true' });
  ui.banner = el('p', { class: 'reconnect-banner', id: 'reconnect-banner', hidden: true },
    el('span', { 'aria-hidden': 'true', text: '⟳ ' }), t('conn_reconnecting'));
  const side = playerId ? el('aside', { class: 'display-side', 'aria-label': t('display_playlist') }) : null;
  fill(main,
    el('header', { class: 'bar' }, el('h1', { id: 'branch-name', text: branch.name }), ui.clock, badge),
    ui.banner,
    el('div', { class: `display-layout ${side ? 'with-side' : ''}` },
      el('section', { class: 'display-main', 'aria-labelledby': 'now-title' },
        el('h2', { id: 'now-title', class: 'now-title', text: t('display_now') }),
        ui.now,
        el('h2', { class: 'recent-title', text: t('display_recent') }),
        ui.recent),
      side),
    ui.spoken,
    soundButton());
  const tick = () => fill(ui.clock, new Date().toLocaleTimeString(document.documentElement.lang, { hour: '2-digit', minute: '2-digit' }));
  tick();
  setInterval(tick, 10000);
  if (side) {
    new PlaylistLoop({ container: side, tokens, branchId, playerId, onAuthError: () => reauth(tokens) }).start();
  }
}

withTokens(tokens, async () => {
  branch = await loadBranchOrExplain(tokens, branchId);
  if (!branch) return;
  document.title = `${t('display_title')} · ${branch.name}`;
  layout();
  render();
  new LiveStream({
    tokens, path: `${base}/events`, snapshot, onEvent,
    onState: (state) => {
      ui.setConnection(state);
      ui.banner.hidden = state === 'live' || state === 'connecting';
      document.body.dataset.connection = state;
      if (state === 'reconnecting') document.body.dataset.reconnects = String(Number(document.body.dataset.reconnects || 0) + 1);
      if (state === 'unauthorized') reauth(tokens);
    },
  }).start();
});
