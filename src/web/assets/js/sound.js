// Sound for the display board: a chime drawn with WebAudio (no file, works
// offline, never waits for speech), then the call announced from short
// pre-recorded clips (`/assets/audio/<lang>/<clip>.ogg`, made by
// scripts/make-voice-clips.sh with espeak-ng and sox). Browser speech is
// used only when there are no clips for the language and the browser has a
// local voice for it (cloud voices need the network). Browsers start audio
// only after a person touches the page: until then `needsTap` is true.
import { lang } from './common.js';

export class Announcer {
  constructor() {
    this.context = null;
    this.buffers = new Map();
    this.queue = Promise.resolve();
    this.clipLang = null;
  }

  /** Creates the audio context; true when it already runs (kiosk policy). */
  prepare() {
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return false;
    this.context = new Context();
    return this.context.state === 'running';
  }

  get needsTap() {
    return !this.context || this.context.state !== 'running';
  }

  /** Called from the tap's event handler. */
  async enable() {
    if (!this.context) this.prepare();
    if (this.context) await this.context.resume();
    return !this.needsTap;
  }

  chime(at) {
    const ctx = this.context;
    const start = at ?? ctx.currentTime + 0.05;
    for (const [offset, frequency] of [[0, 880], [0.35, 660]]) {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.type = 'sine';
      osc.frequency.value = frequency;
      gain.gain.setValueAtTime(0.0001, start + offset);
      gain.gain.exponentialRampToValueAtTime(0.4, start + offset + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + offset + 0.6);
      osc.connect(gain).connect(ctx.destination);
      osc.start(start + offset);
      osc.stop(start + offset + 0.65);
    }
    return start + 1.0;
  }

  async clip(language, name) {
    const key = `${language}/${name}`;
    if (!this.buffers.has(key)) {
      this.buffers.set(key, (async () => {
        const response = await fetch(`/assets/audio/${key}.ogg`);
        if (!response.ok) return null;
        return this.context.decodeAudioData(await response.arrayBuffer());
      })().catch(() => null));
    }
    return this.buffers.get(key);
  }

  /** The clip names that say "A042, counter 3". */
  static words(number, counterLabel) {
    const spell = (text) => [...text.toLowerCase()].filter((c) => /[a-z0-9]/.test(c));
    const digits = (counterLabel.match(/\d+/g) || []).join('');
    return [...spell(number), ...(digits ? ['counter', ...spell(digits)] : [])];
  }

  /** Chime, then the announcement; calls are queued, never overlapped. */
  announce(number, counterLabel, spokenText) {
    this.queue = this.queue.then(() => this.play(number, counterLabel, spokenText)).catch(() => {});
    return this.queue;
  }

  async play(number, counterLabel, spokenText) {
    if (this.needsTap) return;
    const ctx = this.context;
    let at = this.chime();
    const words = Announcer.words(number, counterLabel);
    const language = lang;
    let buffers = await Promise.all(words.map((w) => this.clip(language, w)));
    if (buffers.some((b) => !b) && language !== 'en' && !hasLocalVoice(language)) {
      buffers = await Promise.all(words.map((w) => this.clip('en', w)));
    }
    if (buffers.every(Boolean)) {
      for (const buffer of buffers) {
        const source = ctx.createBufferSource();
        source.buffer = buffer;
        source.connect(ctx.destination);
        source.start(at);
        at += buffer.duration * 0.92;
      }
      await wait((at - ctx.currentTime) * 1000);
    } else if (hasLocalVoice(language)) {
      await wait((at - ctx.currentTime) * 1000);
      await speak(spokenText, language);
    }
  }
}

function localVoice(language) {
  if (!('speechSynthesis' in window)) return null;
  return speechSynthesis.getVoices().find((v) => v.localService && v.lang.toLowerCase().startsWith(language)) || null;
}

function hasLocalVoice(language) { return Boolean(localVoice(language)); }

function speak(text, language) {
  return new Promise((resolve) => {
    const utterance = new SpeechSynthesisUtterance(text);
    utterance.voice = localVoice(language);
    utterance.lang = language;
    utterance.onend = resolve;
    utterance.onerror = resolve;
    speechSynthesis.speak(utterance);
  });
}

function wait(ms) { return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms))); }
