// The kiosk: one large button per service, then the new ticket with its
// position, estimated wait and the QR code of the customer's link.
import {
  t, el, fill, main, data, Tokens, api, withTokens, loadBranchOrExplain, waitText, isAuthError, reauth,
} from './common.js';
import { qrSvg } from './qr.js';

const branchId = data.branch;
const SERVICES_KEY = `turnus.kiosk.services.${branchId}`;
const PIN_KEY = 'turnus.kiosk.pin';

// `#pin=1234` sets the settings PIN once, like the tokens (read before the
// tokens take the fragment out of the address bar).
{
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.has('pin')) {
    localStorage.setItem(PIN_KEY, fragment.get('pin'));
    const tokensToo = fragment.has('token') || fragment.has('display');
    if (!tokensToo) history.replaceState(null, '', location.pathname + location.search);
  }
}
const tokens = new Tokens(['kiosk', 'display']);
const BACK_AFTER_MS = 30000;


let branch = null;
let backTimer = null;

function chosenServices() {
  const fromQuery = new URLSearchParams(location.search).get('services');
  const chosen = (fromQuery || localStorage.getItem(SERVICES_KEY) || '').split(',').filter(Boolean);
  const all = branch.services;
  const subset = all.filter((s) => chosen.includes(s.id));
  return subset.length ? subset : all;
}

function header() {
  return el('header', { class: 'kiosk-header' },
    el('h1', { id: 'branch-name', text: branch.name }),
    localStorage.getItem(PIN_KEY)
      ? el('button', { type: 'button', class: 'button quiet settings-button', onclick: askPin, text: t('kiosk_settings') })
      : null);
}

function showServices(message) {
  clearTimeout(backTimer);
  const services = chosenServices();
  fill(main,
    header(),
    el('p', { class: 'kiosk-prompt', id: 'kiosk-prompt', text: t('kiosk_prompt') }),
    message ? el('p', { class: 'notice error', role: 'alert' }, el('span', { 'aria-hidden': 'true', text: '⚠ ' }), message) : null,
    el('div', { class: 'service-buttons', role: 'group', 'aria-labelledby': 'kiosk-prompt' },
      services.map((service) => el('button', {
        type: 'button', class: 'button service-button', 'data-service': service.id,
        onclick: () => issue(service),
      }, el('span', { class: 'service-prefix', 'aria-hidden': 'true', text: service.prefix }),
      el('span', { class: 'service-name', text: service.name })))));
}

async function issue(service) {
  for (const button of main.querySelectorAll('button')) button.disabled = true;
  try {
    const ticket = await api(tokens, 'kiosk', 'POST', `/api/v1/branches/${branchId}/tickets`, { service: service.id });
    showTicket(ticket, service);
  } catch (e) {
    if (isAuthError(e)) reauth(tokens);
    else showServices(t('kiosk_failed'));
  }
}

function showTicket(ticket, service) {
  const ahead = Math.max(0, (ticket.position || 1) - 1);
  const link = new URL(ticket.link, location.origin).href;
  const done = el('button', { type: 'button', class: 'button primary', onclick: () => showServices(), text: t('kiosk_done') });
  fill(main,
    el('section', { class: 'ticket-card', 'aria-labelledby': 'ticket-heading' },
      el('h1', { id: 'ticket-heading', class: 'ticket-caption', text: t('kiosk_your_number') }),
      el('p', { class: 'ticket-number', id: 'ticket-number', text: ticket.number }),
      el('p', { class: 'ticket-service', text: service.name }),
      el('p', { class: 'ticket-position', id: 'ticket-position', role: 'status' },
        ahead === 0 ? t('ahead_none') : t('ahead_n', { n: ahead })),
      el('p', { class: 'ticket-wait' }, t('estimated_wait'), ' ', el('strong', { text: waitText(ticket.estimated_wait_s) })),
      el('figure', { class: 'ticket-qr', id: 'ticket-qr', 'data-link': link },
        qrSvg(link, t('qr_label')),
        el('figcaption', { text: t('qr_caption') })),
      el('p', { class: 'print-only ticket-branch', text: branch.name }),
      el('div', { class: 'actions no-print' },
        el('button', { type: 'button', class: 'button', onclick: () => window.print(), text: t('kiosk_print') }),
        done)));
  done.focus();
  backTimer = setTimeout(() => showServices(), BACK_AFTER_MS);
}

function askPin() {
  const input = el('input', { id: 'pin', type: 'password', inputmode: 'numeric', autocomplete: 'off' });
  const form = el('form', { class: 'token-form' },
    el('h1', { text: t('kiosk_settings') }),
    el('div', { class: 'field' }, el('label', { for: 'pin', text: t('kiosk_pin') }), input),
    el('div', { class: 'actions' },
      el('button', { type: 'button', class: 'button', onclick: () => showServices(), text: t('back') }),
      el('button', { type: 'submit', class: 'button primary', text: t('ok') })));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (input.value === localStorage.getItem(PIN_KEY)) showSettings();
    else showServices(t('kiosk_pin_wrong'));
  });
  fill(main, form);
  input.focus();
}

function showSettings() {
  const current = chosenServices().map((s) => s.id);
  const boxes = branch.services.map((s) => {
    const box = el('input', { type: 'checkbox', id: `svc-${s.id}`, value: s.id, checked: current.includes(s.id) });
    return el('div', { class: 'check' }, box, el('label', { for: `svc-${s.id}`, text: s.name }));
  });
  const form = el('form', { class: 'token-form' },
    el('h1', { text: t('kiosk_settings') }),
    el('fieldset', {}, el('legend', { text: t('kiosk_services_shown') }), boxes),
    el('div', { class: 'actions' },
      el('button', { type: 'button', class: 'button', onclick: () => showServices(), text: t('back') }),
      el('button', { type: 'submit', class: 'button primary', text: t('save') })));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const chosen = [...form.querySelectorAll('input:checked')].map((i) => i.value);
    localStorage.setItem(SERVICES_KEY, chosen.join(','));
    showServices();
  });
  fill(main, form);
}

withTokens(tokens, async () => {
  branch = await loadBranchOrExplain(tokens, branchId);
  if (!branch) return;
  document.title = `${t('kiosk_title')} · ${branch.name}`;
  showServices();
});
