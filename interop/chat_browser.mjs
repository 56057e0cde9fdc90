// Cyclone's chat page in a real browser: headless Chromium (Debian's), driven
// by playwright-core, two tabs on the same /chat page talking through
// Cyclone's /ws/chat broadcast.
//
//   node interop/chat_browser.mjs http://127.0.0.1:PORT/chat
//
// Proves that Chromium's own WebSocket client (its handshake, its masking,
// the permessage-deflate it always offers) opens a connection to Cyclone,
// and that a message sent from one tab reaches the other tab and the
// sender's own, both ways.
//
// The page's contract (src's /chat page): a text input #name (optional), a
// text input #message, a form #send (submitting sends the message and
// clears #message), a list #messages to which each chat message received
// is appended as an <li> containing `name: text`, and
// document.body.dataset.state set to "open" once its WebSocket to /ws/chat
// is open ("closed" when it closes).
//
// Each check is printed as it passes (`ok`) or fails (`FAIL`, with the
// tabs' state, list and console errors); exit status 1 on failure.

import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';

// The packages live in interop/node/node_modules (installed by setup.sh);
// ES module imports resolve only from the importing file's own folders, so
// require them through interop/node/package.json instead.
const require = createRequire(new URL('./node/package.json', import.meta.url));
const { chromium } = require('playwright-core');

// How long a page may take to load, open its WebSocket, or show a message.
// Loopback and a local browser need well under a second; this only bounds
// a page that never gets there, so the run fails instead of hanging.
const STEP_TIMEOUT_MS = 10_000;
// Starting Chromium on a busy 2-core machine can take several seconds.
const LAUNCH_TIMEOUT_MS = 60_000;

const url = process.argv[2];
if (!url) {
  console.error('usage: node interop/chat_browser.mjs http://127.0.0.1:PORT/chat');
  process.exit(2);
}

let passes = 0;
function ok(name) {
  passes += 1;
  console.log(`  ok   browser: ${name}`);
}

// Debian's Chromium: playwright's own browser download cannot work here.
// Playwright gives every launch a new empty profile (its own temporary
// --user-data-dir) and adds --headless; the other flags keep Chromium off
// the network (background fetches, component and sync updates, QUIC)
// and runnable as root in a container (--no-sandbox) without a GPU.
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  timeout: LAUNCH_TIMEOUT_MS,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});

const tabs = [];
let step = 'launch';
let code = 0;
try {
  const context = await browser.newContext();
  context.setDefaultTimeout(STEP_TIMEOUT_MS);

  // Two tabs, each as a person would use it: open the page, wait until it
  // says its WebSocket is open.
  for (const name of ['alice', 'bob']) {
    step = `tab ${name}: load ${url} and open the WebSocket`;
    const page = await context.newPage();
    const tab = { name, page, errors: [] };
    tabs.push(tab);
    page.on('console', (msg) => {
      if (msg.type() === 'error') tab.errors.push(`console: ${msg.text()}`);
    });
    page.on('pageerror', (err) => tab.errors.push(`page error: ${err.message}`));
    const response = await page.goto(url);
    if (!response || !response.ok()) {
      throw new Error(`GET ${url} answered ${response ? response.status() : 'nothing'}`);
    }
    await page.waitForFunction(() => document.body.dataset.state === 'open');
    ok(`tab ${name}: /chat loaded, WebSocket open`);
  }

  // One message each way. Each carries a fresh token, so that nothing left
  // over can match; non-ASCII text; and markup, which must show as text
  // (an <li> filled through innerHTML would lose it, and run it).
  const token = randomBytes(4).toString('hex');
  const sends = [
    { from: tabs[0], to: tabs[1], text: `hello from alice ${token} · héllo ☃ 日本語 🎉` },
    { from: tabs[1], to: tabs[0], text: `bob answers ${token} <i>not markup</i> & "quotes"` },
  ];
  for (const { from, to, text } of sends) {
    step = `tab ${from.name}: send a message`;
    const page = from.page;
    // #name is optional in the page's contract; without it the page names
    // the sender itself, and only the text can be looked for.
    const hasName = (await page.locator('#name').count()) > 0;
    if (hasName) await page.locator('#name').fill(from.name);
    await page.locator('#message').fill(text);
    // The form's own submit, as pressing Enter or a submit button would do;
    // it runs the page's submit handler and its validation.
    await page.locator('#send').evaluate((form) => form.requestSubmit());
    await page.waitForFunction(() => document.querySelector('#message').value === '');
    ok(`tab ${from.name}: message submitted, #message cleared`);

    const expected = hasName ? `${from.name}: ${text}` : text;
    for (const tab of [to, from]) {
      step = `tab ${tab.name}: the message from ${from.name} appears in #messages`;
      await tab.page.locator('#messages li').filter({ hasText: expected }).first().waitFor();
      ok(`tab ${tab.name}: shows ${JSON.stringify(expected)}`);
    }
  }
} catch (err) {
  code = 1;
  console.log(`  FAIL browser: ${step}: ${err.message.split('\n')[0]}`);
  // What each tab shows, to tell a page that never connected from one that
  // connected but never received.
  for (const tab of tabs) {
    try {
      const state = await tab.page.evaluate(() => ({
        state: document.body.dataset.state,
        messages: [...document.querySelectorAll('#messages li')].map((li) => li.textContent),
      }));
      console.log(`       tab ${tab.name}: state=${JSON.stringify(state.state)} messages=${JSON.stringify(state.messages)}`);
    } catch (e) {
      console.log(`       tab ${tab.name}: page unreadable (${e.message.split('\n')[0]})`);
    }
    for (const e of tab.errors) console.log(`       tab ${tab.name}: ${e}`);
  }
} finally {
  await browser.close();
}
console.log(`browser: ${passes} passed, ${code} failed`);
process.exit(code);
