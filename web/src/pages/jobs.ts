// Jobs: live jobs (state, escrow, deadlines), a job's Proof-of-Learning committee (commits and
// reveals) and its training audit (spot checks and disputes), and what happened to jobs lately.
import type { Page } from '../context';
import { recentEvents } from '../events';
import { account, badge, bly, h, mono, table } from '../ui';

export const jobsPage: Page = async ({ api }, el, params) => {
  const [entries, history] = await Promise.all([api.query.jobs.jobs.entries(), recentEvents(api)]);
  const jobs = entries
    .map(([key, value]) => ({ id: (key.args[0] as any).toNumber() as number, job: (value as any).unwrap() }))
    .sort((a, b) => a.id - b.id);
  el.append(h('h1', {}, 'Jobs'));
  el.append(table(['Job', 'Model', 'Creator', 'Escrow', 'Creator bond', 'State', 'Worker', 'Stage ends'], jobs.map(({ id, job }) => {
    const status = job.status;
    const worker = status.isOpen ? undefined : (status.value.worker?.toString() as string | undefined);
    return [
      h('a', { href: `#/jobs?job=${id}`, 'data-job': id }, `#${id}`),
      `#${job.model.toNumber()}`,
      account(job.creator.toString()),
      bly(job.reward.toBigInt()),
      bly(job.creatorBond.toBigInt()),
      h('span', { 'data-status': status.type }, badge(status.type, 'warn')),
      worker ? account(worker) : h('span', { class: 'muted' }, '—'),
      `#${job.stageDeadline.toNumber()}`,
    ];
  }), 'No job is live (posted and not yet ended).', 'jobs'));

  const selected = params.get('job');
  const chosen = jobs.find((j) => String(j.id) === selected) ?? (selected === null ? undefined : null);
  if (chosen === null) el.append(h('p', { class: 'empty' }, `Job #${selected} is not live (ended or never posted).`));
  if (chosen) el.append(await jobDetail(api, chosen.id, chosen.job));

  const lifecycle = history.events.filter((e) => (e.section === 'jobs' && 'job' in e.data) || (e.section === 'polRewards' && ['Verified', 'NoQuorum'].includes(e.method)) || (e.section === 'trainingAudit' && 'job' in e.data));
  el.append(h('h2', {}, `What happened to jobs in blocks #${history.from}–#${history.to}`));
  el.append(table(['Block', 'Job', 'Event'], lifecycle.slice(-50).reverse().map((e) => [
    `#${e.block}`, `#${e.data.job}`, `${e.section}.${e.method}`,
  ]), 'No job events in these blocks.', 'job-events'));
};

async function jobDetail(api: any, id: number, job: any): Promise<HTMLElement> {
  const [round, audit, disputes] = await Promise.all([
    api.query.polRewards.rounds(id),
    api.query.trainingAudit.audits(id),
    api.query.trainingAudit.disputes.entries(id),
  ]);
  const card = h('section', { class: 'card', 'data-testid': 'job-detail', 'data-job': id },
    h('h2', {}, `Job #${id} `, badge(job.status.type, 'warn')),
    h('p', {}, 'Specification'),
    h('pre', { class: 'mono', 'data-testid': 'spec' }, JSON.stringify(job.spec.toHuman(), null, 2)),
    h('p', {}, `Minimum improvement ${job.minImprovement.toHuman()}; validation set `,
      job.validation.isSome ? mono(JSON.stringify(job.validation.unwrap().toHuman())) : 'not revealed yet'));
  card.append(h('h2', {}, 'Proof-of-Learning committee'));
  if (round.isSome) {
    const r = round.unwrap();
    card.append(h('p', {}, `Phase ${r.phase.type} until block #${r.deadline.toNumber()} (attempt ${r.attempt.toNumber() + 1}); claimed score `,
      r.claimedScore.isSome ? r.claimedScore.unwrap().toString() : 'not revealed'));
    card.append(table(['Verifier', 'Committed', 'Revealed (base, candidate)'], r.committee.map((m: any) => [
      account(m.verifier.toString()),
      m.commitment.isSome ? mono(m.commitment.unwrap().toHex()) : h('span', { class: 'muted' }, 'not yet'),
      m.scores.isSome ? m.scores.unwrap().map((x: any) => x.toString()).join(', ') : h('span', { class: 'muted' }, 'not yet'),
    ]), 'No committee drawn yet.', 'committee'));
  } else {
    card.append(h('p', { class: 'muted' }, 'No verification round (the result is not revealed yet, or is being audited).'));
  }
  card.append(h('h2', {}, 'Training audit'));
  if (audit.isSome) {
    const a = audit.unwrap();
    card.append(h('p', {}, `Phase ${a.phase.type} until block #${a.deadline.toNumber()}; trace of ${a.trace.steps.toNumber()} steps, root `, mono(a.trace.root.toHex())));
    card.append(table(['Segment', 'Checker', 'Outcome'], a.spotChecks.map((c: any) => [
      c.segment.toNumber(), account(c.checker.toString()),
      c.attested.isTrue ? 'attested' : c.challenged.isTrue ? 'challenged' : c.unavailable.isTrue ? 'trace unavailable' : 'pending',
    ]), 'No spot checks drawn yet.', 'spot-checks'));
    card.append(table(['Challenge', 'Segment', 'Challenger', 'Bond', 'Agreed up to step', 'Disputed step', 'Waiting for'], disputes.map(([key, value]: any) => {
      const d = value.unwrap();
      return [key.args[1].toNumber(), d.segment.toNumber(), account(d.challenger.toString()), bly(d.bond.toBigInt()), d.lo.toNumber(), d.hi.toNumber(), d.stage.type];
    }), 'No disputes.', 'disputes'));
  } else {
    card.append(h('p', { class: 'muted' }, 'No audit under way for this job.'));
  }
  return card;
}
