// The media player: a player profile's playlist in a loop, full screen.
import { t, el, fill, main, data, Tokens, withTokens, reauth } from './common.js';
import { PlaylistLoop } from './playlist.js';

const tokens = new Tokens(['display']);

withTokens(tokens, async () => {
  const stage = el('div', { class: 'player-stage', id: 'player-stage', 'aria-label': t('player_title'), role: 'region' });
  fill(main, el('h1', { class: 'visually-hidden', text: `${t('player_title')} ${data.player}` }), stage);
  new PlaylistLoop({
    container: stage, tokens, branchId: data.branch, playerId: data.player, onAuthError: () => reauth(tokens),
  }).start();
});
