// The consent page in a real browser: Debian's chromium driven by playwright-core.
// Usage: node consent_browser.cjs AUTHORIZE_URL approve|deny USER PASSWORD SCREENSHOT
// Opens the page, fills the sign-in when approving, screenshots it, clicks the decision and
// reports where the browser was sent (the client's redirect URI is a listener of this script).
const http = require('node:http');
const { chromium } = require('playwright-core');

(async () => {
  const [authorizeUrl, decision, user, password, screenshot] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  let stop = () => {};
  try {
    const page = await browser.newPage();
    const callback = new URL(new URL(authorizeUrl).searchParams.get('redirect_uri'));
    // The client's redirect URI, served for real (as a native app's loopback listener is).
    let redirected = null;
    const listener = http.createServer((req, res) => {
      if (req.url.startsWith(callback.pathname)) redirected = `${callback.origin}${req.url}`;
      res.end('client callback');
    });
    await new Promise((resolve) => listener.listen(Number(callback.port), callback.hostname, resolve));
    stop = () => listener.close();
    const response = await page.goto(authorizeUrl);
    const report = {
      status: response.status(),
      title: await page.title(),
      client: await page.textContent('#client-name'),
      scopes: await page.$$eval('#scopes li', (items) => items.map((li) => li.textContent)),
      redirect_host: await page.textContent('#redirect-host'),
      csp: response.headers()['content-security-policy'] || null,
    };
    if (decision === 'approve') {
      await page.fill('input[name=username]', user);
      await page.fill('input[name=password]', password);
    }
    await page.screenshot({ path: screenshot, fullPage: true });
    try {
      await Promise.all([
        page.waitForURL(`${callback.origin}/**`, { timeout: 15000 }),
        page.click(`button[value=${decision}]`),
      ]);
    } catch (e) {
      await page.waitForTimeout(500);
      throw new Error(`no redirect to the client (${e.message}); at ${page.url()}: ${await page.content().catch(() => '?')}`);
    }
    const back = new URL(redirected);
    report.redirected_to = `${back.origin}${back.pathname}`;
    report.params = Object.fromEntries([...back.searchParams.keys()].map((k) =>
      [k, k === 'code' ? (back.searchParams.get(k).length > 20 ? 'present' : 'short') : back.searchParams.get(k)]));
    console.log(JSON.stringify(report));
  } finally {
    await browser.close();
    stop();
  }
})().catch((e) => { console.error(e); process.exit(1); });
