// The soak's Markdown: one row per interval, then the outcome check (clients vs daemon).
import type { SoakReport } from './soak';

export function renderSoakMarkdown(r: SoakReport): string {
  const o = r.options;
  const lines = [
    `# Slotwise soak: ${o.minutes} min, ${o.clients} clients, model ${o.model}`,
    '',
    `Started ${r.startedAt}. Random prompt lengths (1–200 words), random output lengths, ~10% of requests aborted by the client mid-stream.`,
    '',
    '| interval | end (s) | requests | completed | aborted | rejected | errors | p50 ms | p99 ms | daemon RSS MB | llama-server RSS MB |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...r.intervals.map(
      (i) =>
        `| ${i.index} | ${i.endS} | ${i.requests} | ${i.completed} | ${i.aborted} | ${i.rejected} | ${i.errors} | ${i.p50Ms ?? '–'} | ${i.p99Ms ?? '–'} | ${i.daemonRssMB} | ${i.llamaServerRssMB ?? '–'} |`,
    ),
    '',
    '| outcome | clients | daemon |',
    '| --- | ---: | ---: |',
    `| requests | ${r.client.sent} | ${r.daemon.requests} |`,
    ...(['completed', 'cancelled', 'rejected', 'failed'] as const).map((k) => `| ${k} | ${r.client[k]} | ${r.daemon[k]} |`),
    '',
    r.outcomesMatch ? 'Outcomes match: every request was counted once, as the client saw it.' : '**Outcomes differ** between the clients and the daemon.',
    `llama-server restarts during the soak: ${r.restarts}.`,
    ...(r.firstError ? ['', `First client error: ${r.firstError}`] : []),
    '',
  ];
  return lines.join('\n');
}
