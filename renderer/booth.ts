import type { BoothApi, BoothStatus } from '../main/contracts/ipc.js';

// The booth UI: start/stop a recording and show its status. Talks only to the preload's API.
const booth = (window as unknown as { egressBooth: BoothApi }).egressBooth;
const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const startBtn = $<HTMLButtonElement>('start');
const stopBtn = $<HTMLButtonElement>('stop');
const statusEl = $<HTMLDivElement>('status');

function show(s: BoothStatus): void {
  statusEl.textContent = `${s.egressId}: ${s.status}${s.error ? `\n${s.error}` : ''}${s.location ? `\n${s.location}` : ''}`;
  const running = s.status === 'EGRESS_STARTING' || s.status === 'EGRESS_ACTIVE' || s.status === 'EGRESS_ENDING';
  startBtn.disabled = running;
  stopBtn.disabled = !running;
}

booth.onStatus(show);
startBtn.addEventListener('click', () => {
  const url = $<HTMLInputElement>('url').value.trim();
  const preset = $<HTMLSelectElement>('preset').value;
  void booth.start({ ...(url ? { url } : {}), preset }).then(show, (e: unknown) => (statusEl.textContent = String(e)));
});
stopBtn.addEventListener('click', () => void booth.stop());
