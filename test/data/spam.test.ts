import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { datasets, parseEmail, SPAM_GROUPS } from '../../src/data/index.js';

/** [train, validation, test] per group, default seed. */
const COUNTS: Record<(typeof SPAM_GROUPS)[number], [number, number, number]> = {
  'easy-ham-1': [2004, 249, 247],
  'easy-ham-2': [1120, 141, 139],
  'hard-ham-1': [198, 27, 25],
  'spam-1': [400, 48, 52],
  'spam-2': [1115, 141, 140],
};

describe('datasets.spamAssassin', () => {
  it('splits every group 80/10/10', async () => {
    let total = 0;
    for (const g of SPAM_GROUPS) {
      const sizes = [];
      for (const split of ['train', 'validation', 'test'] as const) sizes.push((await datasets.spamAssassin({ groups: [g], split })).table.numRows());
      assert.deepEqual(sizes, COUNTS[g], g);
      total += sizes.reduce((a, b) => a + b, 0);
    }
    assert.equal(total, 6046);
  });

  it('labels spam groups 1 and ham groups 0; text is subject + plain body, no headers', async () => {
    const { table, task } = await datasets.spamAssassin({ split: 'all' });
    assert.deepEqual(task.labelNames, ['ham', 'spam']);
    const rows = table.objects() as Array<{ text: string; subject: string; body: string; label: number; group: string }>;
    assert.equal(rows.filter((r) => r.label === 1).length, 1896);
    for (const r of rows) {
      assert.equal(r.label, r.group.startsWith('spam') ? 1 : 0);
      assert.ok(r.text.startsWith(r.subject));
    }
    // Every raw message starts with Received/Return-Path headers; only bodies that embed a whole message still do.
    const headerLike = rows.filter((r) => /^(Received|Return-Path|Delivered-To):/.test(r.body)).length;
    assert.ok(headerLike < 10, `${headerLike} bodies start with a header line`);
  });

  it('the release-1 → release-2 transfer pair', async () => {
    const pair = datasets.transferPairs.spamRelease;
    const src = await pair.source({ split: 'train' });
    const tgt = await pair.target({ split: 'test' });
    assert.equal(src.table.numRows(), 2004 + 400);
    assert.equal(tgt.table.numRows(), 139 + 140);
    assert.deepEqual(new Set(src.table.array('group')), new Set(['easy-ham-1', 'spam-1']));
    assert.deepEqual(new Set(tgt.table.array('group')), new Set(['easy-ham-2', 'spam-2']));
    assert.equal(pair.shift, 'domain');
  });

  it('rejects an unknown group', async () => {
    await assert.rejects(datasets.spamAssassin({ groups: ['spam-3' as never] }), /unknown group "spam-3"/);
  });
});

describe('parseEmail', () => {
  it('multipart: prefers text/plain, decodes quoted-printable and RFC 2047 subjects', () => {
    const raw = [
      'From: a@example.org', 'Subject: =?iso-8859-1?Q?Caf=E9_prices?=', 'Date: Thu, 22 Aug 2002 12:36:23 +0100',
      'Content-Type: multipart/alternative;', '\tboundary="XYZ"', '', 'preamble', '--XYZ',
      'Content-Type: text/plain; charset=iso-8859-1', 'Content-Transfer-Encoding: quoted-printable', '',
      'Caf=E9 au lait is =', 'cheap.', '--XYZ', 'Content-Type: text/html', '', '<p>ignored</p>', '--XYZ--', '',
    ].join('\r\n');
    const m = parseEmail(raw);
    assert.equal(m.subject, 'Café prices');
    assert.equal(m.body, 'Café au lait is cheap.');
    assert.equal(m.date, '2002-08-22T11:36:23.000Z');
  });

  it('HTML-only and base64 bodies become plain text', () => {
    const html = 'Subject: Win\nContent-Type: text/html\n\n<html><style>p{}</style><body><p>You&nbsp;<b>won</b>!</p><br>Claim &#36;5</body></html>';
    assert.equal(parseEmail(html).body, 'You won !\n\nClaim $5');
    const b64 = `Subject: x\nContent-Transfer-Encoding: base64\n\n${Buffer.from('hello there').toString('base64')}\n`;
    assert.equal(parseEmail(b64).body, 'hello there');
  });

  it('a missing or forged date is null', () => {
    assert.equal(parseEmail('Subject: s\n\nbody').date, null);
    assert.equal(parseEmail('Date: someday\n\nbody').date, null);
  });
});
