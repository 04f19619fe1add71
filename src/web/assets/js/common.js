// Shared by every page: texts, DOM building (text only, never HTML strings),
// tokens, the API client and the live event stream.
//
// Tokens: a page needs one or more roles (kiosk + display, operator +
// display, display). A token given once as `#token=…` (and optionally
// `#token=…&display=…`) in the URL fragment, which browsers never send to
// the server, or typed into the form, is kept in localStorage per role.
// An admin token may be given alone: it serves every role.

const textsElement = document.getElementById('turnus-texts');
export const texts = textsElement ? JSON.parse(textsElement.textContent) : {};
export const lang = document.documentElement.lang || 'en';
export const data = document.body.dataset;

/** The text for `key`, with `{name}` replaced from `vars`. */
export function t(key, vars = {}) {
  const template = texts[key] ?? key;
  return template.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
}

/** An element with attributes and children (strings become text nodes). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Replaces a node's children. */
export function fill(node, ...children) {
  node.replaceChildren();
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export const main = document.getElementById('main');

/** Minutes, for people: "about 4 min", "less than a minute". */
export function waitText(seconds) {
  if (seconds === null || seconds === undefined) return '';
  if (seconds < 60) return t('wait_under_minute');
  return t('wait_minutes', { n: Math.round(seconds / 60) });
}

export function durationText(seconds) {
  if (seconds === null || seconds === undefined) return '–';
  const m = Math.floor(seconds / 60);
  const s = Math.floor(seconds % 60);
  return m > 0 ? `${m} min ${String(s).padStart(2, '0')} s` : `${s} s`;
}

export function timeText(iso) {
  if (!iso) return '';
  return new Date(iso).toLocaleTimeString(lang, { hour: '2-digit', minute: '2-digit' });
}

// Tokens ---------------------------------------------------------------

const STORE = 'turnus.token.';

function takeFragment() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  return { fragment, hasAny: fragment.has('token') || fragment.has('display') };
}

/** A token was refused after the page started: forget it and start over. */
export function reauth(tokens) {
  tokens.forget();
  location.reload();
}

export class Tokens {
  /** `roles[0]` is the page's main role; the others fall back to it. */
  constructor(roles) {
    this.roles = roles;
    const { fragment, hasAny } = takeFragment();
    if (hasAny) {
      if (fragment.has('token')) localStorage.setItem(STORE + roles[0], fragment.get('token'));
      for (const role of roles.slice(1)) {
        if (fragment.has(role)) localStorage.setItem(STORE + role, fragment.get(role));
      }
      // Out of the address bar and the history, once stored.
      history.replaceState(null, '', location.pathname + location.search);
    }
  }

  get(role) {
    return localStorage.getItem(STORE + role) || localStorage.getItem(STORE + this.roles[0]) || '';
  }

  has() {
    return Boolean(localStorage.getItem(STORE + this.roles[0]));
  }

  forget() {
    for (const role of this.roles) localStorage.removeItem(STORE + role);
  }

  /** Shows the token form in `container`; resolves once tokens are saved. */
  ask(container, reason) {
    return new Promise((resolve) => {
      const inputs = this.roles.map((role, i) => {
        const id = `token-${role}`;
        const input = el('input', {
          id, type: 'password', autocomplete: 'off', required: i === 0, spellcheck: 'false',
        });
        const help = i === 0 ? null : el('p', { class: 'hint', id: `${id}-hint`, text: t('token_fallback_hint') });
        if (help) input.setAttribute('aria-describedby', help.id);
        return { role, input, field: el('div', { class: 'field' }, el('label', { for: id, text: t('token_label_' + role) }), input, help) };
      });
      const form = el('form', { class: 'token-form', 'aria-labelledby': 'token-title' },
        el('h1', { id: 'token-title', text: t('token_title') }),
        reason ? el('p', { class: 'notice', role: 'alert', text: reason }) : null,
        el('p', { text: t('token_intro') }),
        inputs.map((i) => i.field),
        el('button', { type: 'submit', class: 'button primary', text: t('token_save') }));
      form.addEventListener('submit', (event) => {
        event.preventDefault();
        for (const { role, input } of inputs) {
          if (input.value.trim()) localStorage.setItem(STORE + role, input.value.trim());
          else localStorage.removeItem(STORE + role);
        }
        resolve();
      });
      fill(container, form);
      inputs[0].input.focus();
    });
  }
}

// API ------------------------------------------------------------------

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }
}

/** A JSON API call. `role` picks the token; `null` sends none. */
export async function api(tokens, role, method, path, body, { timeoutMs = 10000 } = {}) {
  const headers = { Accept: 'application/json' };
  if (role && tokens) headers.Authorization = `Bearer ${tokens.get(role)}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  let response;
  try {
    response = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      signal: abort.signal, cache: 'no-store',
    });
  } catch (e) {
    throw new ApiError(0, 'network', t('network_error'));
  } finally {
    clearTimeout(timer);
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (e) { json = null; }
  if (!response.ok) {
    const error = json && json.error ? json.error : {};
    throw new ApiError(response.status, error.code, error.message);
  }
  return json;
}

/** Whether an error means "ask for another token". */
export function isAuthError(e) {
  return e instanceof ApiError && (e.status === 401 || e.status === 403);
}

// Live events ------------------------------------------------------------

/**
 * Follows a branch's Server-Sent Events with fetch() and a streaming body
 * reader (EventSource cannot send the bearer header). On every
 * connection, the first and each reconnect, `snapshot()` re-reads the full
 * state once the stream is open (the node subscribes before it answers),
 * and the events that arrived meanwhile are applied after it: nothing
 * missed while disconnected, or while the snapshot was read, stays missed.
 * An event the snapshot already shows is applied again; the pages end in
 * the same state, and a call made just then is announced once. A stream that
 * shows nothing, not even the node's keep-alive comment (every 15 s), for
 * `silenceMs` is treated as dead.
 */
export class LiveStream {
  constructor({ tokens, path, snapshot, onEvent, onState, silenceMs = 40000 }) {
    Object.assign(this, { tokens, path, snapshot, onEvent, onState, silenceMs });
    this.attempt = 0;
    this.stopped = false;
    this.controller = null;
  }

  start() {
    this.loop();
    // Phones and laptops freeze background tabs: reconnect on return.
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') this.reconnect();
    });
    window.addEventListener('online', () => this.reconnect());
    return this;
  }

  /** Drops the current connection; the loop opens a new one at once. */
  reconnect() {
    this.attempt = 0;
    if (this.controller) this.controller.abort();
    if (this.wake) this.wake();
  }

  async loop() {
    while (!this.stopped) {
      this.onState(this.attempt === 0 ? 'connecting' : 'reconnecting');
      try {
        await this.follow();
      } catch (e) {
        if (isAuthError(e)) { this.onState('unauthorized', e); return; }
      }
      if (this.stopped) return;
      this.attempt += 1;
      this.onState('reconnecting');
      // 0.5 s, 1 s, 2 s … capped at 5 s, with jitter so a room of displays
      // does not come back in one burst.
      const delay = Math.min(5000, 500 * 2 ** Math.min(this.attempt - 1, 4)) * (0.75 + Math.random() * 0.5);
      await new Promise((resolve) => { this.wake = resolve; setTimeout(resolve, delay); });
      this.wake = null;
    }
  }

  async follow() {
    const controller = new AbortController();
    this.controller = controller;
    let silence = setTimeout(() => controller.abort(), this.silenceMs);
    const response = await fetch(this.path, {
      headers: { Authorization: `Bearer ${this.tokens.get('display')}`, Accept: 'text/event-stream' },
      signal: controller.signal, cache: 'no-store',
    });
    if (!response.ok) {
      clearTimeout(silence);
      throw new ApiError(response.status, 'stream', `HTTP ${response.status}`);
    }
    // Subscribed: events from now on wait in the body while the state is
    // read, and are read after it.
    try {
      await this.snapshot();
    } catch (e) {
      clearTimeout(silence);
      controller.abort();
      throw e;
    }
    this.attempt = 0;
    this.onState('live');
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        clearTimeout(silence);
        silence = setTimeout(() => controller.abort(), this.silenceMs);
        buffer += decoder.decode(value, { stream: true });
        let end;
        while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, '');
          this.dispatch(block);
        }
      }
    } finally {
      clearTimeout(silence);
    }
  }

  dispatch(block) {
    let name = 'message';
    const lines = [];
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') name = value;
      else if (field === 'data') lines.push(value);
    }
    if (lines.length === 0) return;
    let payload = null;
    try { payload = JSON.parse(lines.join('\n')); } catch (e) { return; }
    this.onEvent(name, payload);
  }
}

/** The connection badge: text and an icon, never colour alone. */
export function connectionBadge() {
  const badge = el('p', { class: 'connection', role: 'status', 'aria-live': 'polite' });
  const set = (state) => {
    badge.dataset.state = state;
    const label = {
      connecting: t('conn_connecting'), reconnecting: t('conn_reconnecting'),
      live: t('conn_live'), unauthorized: t('conn_unauthorized'),
    }[state] || state;
    const icon = { live: '●', reconnecting: '⟳', connecting: '…', unauthorized: '⚠' }[state] || '';
    fill(badge, el('span', { class: 'icon', 'aria-hidden': 'true', text: icon }), ' ', label);
  };
  return { badge, set };
}

/** A branch's configuration, `null` when this node does not serve it. */
export async function loadBranch(tokens, branch) {
  return api(tokens, 'display', 'GET', `/api/v1/branches/${encodeURIComponent(branch)}`);
}

/** The branch's configuration, or `null` once the page says why not. */
export async function loadBranchOrExplain(tokens, branch) {
  try {
    return await loadBranch(tokens, branch);
  } catch (e) {
    if (isAuthError(e)) throw e;
    showProblem(e.status === 404 ? t('unknown_branch', { branch }) : t('network_error'));
    return null;
  }
}

/** The display name of a counter id in a branch configuration. */
export function counterName(branch, id) {
  const counter = branch && branch.counters ? branch.counters.find((c) => c.id === id) : null;
  return counter ? counter.name : id;
}

export function serviceName(branch, id) {
  const service = branch && branch.services ? branch.services.find((s) => s.id === id) : null;
  return service ? service.name : id;
}

/** Runs `start` once tokens are there; asks again on 401/403. */
export async function withTokens(tokens, start) {
  let reason = null;
  for (;;) {
    if (!tokens.has()) await tokens.ask(main, reason);
    try {
      await start();
      return;
    } catch (e) {
      if (!isAuthError(e)) throw e;
      tokens.forget();
      reason = e.status === 401 ? t('token_unknown') : t('token_forbidden');
    }
  }
}

/** A full-page message (unknown branch, node unreachable). */
export function showProblem(message) {
  fill(main, el('div', { class: 'problem', role: 'alert' },
    el('h1', { text: t('problem_title') }), el('p', { text: message })));
}
