// The dashboard: per branch waiting now, longest wait, today's KPIs and an
// SLA-per-hour chart from the statistics API, a branch over its target as an
// alert; this node's group health. Refreshes by itself. While the
// statistics API is not available here it says so and shows the live queue
// figures of the branches this node serves.
import {
  t, el, fill, main, data, Tokens, withTokens, api, isAuthError, reauth, durationText, timeText,
} from './common.js';
import { slaChart } from './chart.js';

const tokens = new Tokens(['display']);
const REFRESH_MS = 15000;
const served = (data.branches || '').split(',').filter(Boolean);
const targets = new Map(); // branch → smallest service target (s)
const ui = {};

function layout() {
  ui.updated = el('p', { class: 'hint', role: 'status', id: 'dashboard-updated' });
  ui.notice = el('div', { id: 'stats-notice' });
  ui.alerts = el('div', { id: 'alerts', 'aria-live': 'polite' });
  ui.body = el('tbody', { id: 'branches' });
  ui.charts = el('div', { class: 'charts', id: 'charts' });
  ui.health = el('dl', { class: 'health', id: 'health' });
  fill(main,
    el('header', { class: 'bar' }, el('h1', { text: t('dashboard_title') }), ui.updated),
    ui.notice, ui.alerts,
    el('section', { class: 'panel', 'aria-labelledby': 'branches-title' },
      el('h2', { id: 'branches-title', text: t('dashboard_branches') }),
      el('div', { class: 'table-scroll', tabindex: '0', role: 'region', 'aria-labelledby': 'branches-title' },
        el('table', { class: 'branches' },
          el('thead', {}, el('tr', {}, ['dash_branch', 'dash_group', 'dash_waiting', 'dash_longest', 'dash_issued', 'dash_served', 'dash_no_show', 'dash_sla', 'dash_report']
            .map((k, i) => el('th', { scope: 'col', class: i >= 2 ? 'num' : null, text: t(k) })))),
          ui.body))),
    el('section', { class: 'panel', 'aria-labelledby': 'charts-title' },
      el('h2', { id: 'charts-title', text: t('dashboard_sla_chart') }), ui.charts),
    el('section', { class: 'panel', 'aria-labelledby': 'health-title' },
      el('h2', { id: 'health-title', text: t('dashboard_health') }), ui.health));
}

async function target(branch) {
  if (!targets.has(branch)) {
    try {
      const config = await api(tokens, 'display', 'GET', `/api/v1/branches/${branch}`);
      targets.set(branch, Math.min(...config.services.map((s) => s.target_wait_s)));
    } catch (e) {
      if (isAuthError(e)) throw e;
      targets.set(branch, null);
    }
  }
  return targets.get(branch);
}

/** Rows from the statistics API, or `null` when it is not there. */
async function fromStats() {
  try {
    const summary = await api(tokens, 'display', 'GET', '/api/v1/stats/summary');
    return summary.branches || [];
  } catch (e) {
    if (isAuthError(e)) throw e;
    if (e.status === 404) return null;
    throw e;
  }
}

/** Rows from the live queues of the branches this node serves. */
async function fromQueues() {
  return Promise.all(served.map(async (branch) => {
    const queues = await api(tokens, 'display', 'GET', `/api/v1/branches/${branch}/queues`);
    return {
      branch,
      waiting_now: queues.reduce((sum, q) => sum + q.waiting, 0),
      longest_wait_s: queues.reduce((max, q) => Math.max(max, q.longest_wait_s), 0),
    };
  }));
}

function cell(value, cls = 'num') { return el('td', { class: cls, text: value === undefined || value === null ? '–' : String(value) }); }

async function renderRows(rows) {
  const alerts = [];
  const lines = await Promise.all(rows.map(async (row) => {
    const goal = await target(row.branch);
    const over = goal !== null && goal !== undefined && row.longest_wait_s > goal;
    if (over) alerts.push(row.branch);
    return el('tr', { 'data-branch': row.branch, class: over ? 'over' : null },
      el('th', { scope: 'row' }, row.branch, over ? el('span', { class: 'tag alert-tag', text: `⚠ ${t('over_target')}` }) : null),
      cell(row.group, ''),
      el('td', { class: 'num waiting-now', text: String(row.waiting_now ?? '–') }),
      cell(durationText(row.longest_wait_s)),
      cell(row.issued), cell(row.served), cell(row.no_show),
      cell(row.sla_pct === undefined || row.sla_pct === null ? null : `${Math.round(row.sla_pct)} %`),
      cell(row.last_report ? timeText(row.last_report) : null));
  }));
  fill(ui.body, lines);
  fill(ui.alerts, alerts.length
    ? el('p', { class: 'notice error', role: 'alert' }, el('span', { 'aria-hidden': 'true', text: '⚠ ' }), t('dashboard_alert', { branches: alerts.join(', ') }))
    : null);
}

async function renderCharts(rows) {
  const charts = await Promise.all(rows.slice(0, 12).map(async (row) => {
    try {
      const stats = await api(tokens, 'display', 'GET', `/api/v1/stats/branches/${row.branch}`);
      const points = (stats.hours || []).map((h) => ({
        label: String(new Date(h.hour).getHours()).padStart(2, '0'),
        value: h.called ? h.sla_pct : null,
      }));
      if (!points.length) return null;
      return el('figure', { class: 'chart-box' }, slaChart(points, { title: t('dashboard_sla_of', { branch: row.branch }) }),
        el('figcaption', { text: row.branch }));
    } catch (e) {
      return null;
    }
  }));
  const shown = charts.filter(Boolean);
  fill(ui.charts, shown.length ? shown : el('p', { class: 'hint', text: t('dashboard_no_chart') }));
}

async function renderHealth() {
  let cluster;
  try {
    cluster = await api(tokens, 'display', 'GET', '/api/v1/cluster');
  } catch (e) {
    if (isAuthError(e)) throw e;
    fill(ui.health, el('p', { text: t('network_error') }));
    return;
  }
  const up = cluster.upstream;
  const entries = [
    ['health_group', `${cluster.group} (${cluster.role})`],
    ['health_node', cluster.node],
    ['health_leader', cluster.leader || t('health_no_leader')],
    ['health_epoch', cluster.epoch],
    ['health_nodes', (cluster.members || []).map((m) => m.id).join(', ')],
  ];
  if (up) {
    entries.push(
      ['health_upstream', up.connected ? `● ${t('health_connected')}` : `⚠ ${t('health_disconnected')}`],
      ['health_config_version', up.config_version],
      ['health_last_contact', up.last_contact ? timeText(up.last_contact) : '–'],
      ['health_backlog', up.stats_backlog ?? '–'],
      ['health_media', up.media ? `${up.media.version ?? '–'} (${up.media.missing ?? 0} ${t('health_missing')})` : '–'],
    );
  }
  fill(ui.health, entries.map(([k, v]) => [el('dt', { text: t(k) }), el('dd', { text: String(v ?? '–') })]));
}

async function refresh() {
  try {
    let rows = await fromStats();
    if (rows === null) {
      fill(ui.notice, el('p', { class: 'notice', role: 'status' },
        el('span', { 'aria-hidden': 'true', text: 'ℹ ' }), t('dashboard_stats_unavailable')));
      rows = await fromQueues();
      fill(ui.charts, el('p', { class: 'hint', text: t('dashboard_stats_unavailable') }));
    } else {
      fill(ui.notice);
      renderCharts(rows);
    }
    await renderRows(rows);
    await renderHealth();
    fill(ui.updated, t('dashboard_updated', { time: new Date().toLocaleTimeString(document.documentElement.lang) }));
  } catch (e) {
    if (isAuthError(e)) { reauth(tokens); return; }
    fill(ui.updated, el('span', { 'aria-hidden': 'true', text: '⟳ ' }), t('conn_reconnecting'));
  }
}

withTokens(tokens, async () => {
  // A first read proves the token before the page settles.
  await api(tokens, 'display', 'GET', '/api/v1/cluster');
  layout();
  await refresh();
  setInterval(refresh, REFRESH_MS);
});
