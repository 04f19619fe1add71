// A player's playlist in a loop (images and videos), for the player page
// and the display board's side panel. Items the node does not hold yet
// (`present: false`) are skipped; the list is re-read every round, so a
// changed playlist or a newly arrived file shows up by itself.
import { t, el, fill, api, isAuthError } from './common.js';

const VIDEO = /\.(mp4|webm|ogv|m4v|mov)$/i;
const RETRY_MS = 30000;

export class PlaylistLoop {
  constructor({ container, tokens, branchId, playerId, onAuthError }) {
    Object.assign(this, { container, tokens, branchId, playerId, onAuthError });
    this.reduceMotion = window.matchMedia('(prefers-reduced-motion: reduce)').matches;
  }

  async start() {
    for (;;) {
      let items = [];
      try {
        const player = await api(this.tokens, 'display', 'GET',
          `/api/v1/branches/${this.branchId}/players/${encodeURIComponent(this.playerId)}`);
        items = (player.playlist || []).filter((item) => item.present !== false && item.url);
        this.container.dataset.state = items.length ? 'playing' : 'empty';
        if (!items.length) this.empty(t('playlist_empty'));
      } catch (e) {
        if (isAuthError(e) && this.onAuthError) { this.onAuthError(e); return; }
        this.container.dataset.state = 'empty';
        this.empty(e.status === 404 ? t('playlist_none') : t('playlist_unreachable'));
      }
      if (!items.length) { await sleep(RETRY_MS); continue; }
      for (const item of items) await this.show(item);
    }
  }

  empty(message) {
    fill(this.container, el('p', { class: 'playlist-empty', text: message }));
  }

  show(item) {
    const seconds = Math.max(1, Number(item.duration_s) || 10);
    return new Promise((resolve) => {
      let node;
      let timer;
      const next = () => { clearTimeout(timer); resolve(); };
      if (VIDEO.test(item.media)) {
        node = el('video', { src: item.url, muted: true, playsinline: true, autoplay: !this.reduceMotion, class: 'playlist-item' });
        node.muted = true;
        node.addEventListener('ended', next);
        node.addEventListener('error', next);
        if (this.reduceMotion) node.setAttribute('controls', '');
      } else {
        node = el('img', { src: item.url, alt: '', class: 'playlist-item' });
        node.addEventListener('error', next);
      }
      fill(this.container, node);
      timer = setTimeout(next, seconds * 1000);
    });
  }
}

function sleep(ms) { return new Promise((resolve) => setTimeout(resolve, ms)); }
