// The consent page in a real browser: Debian's chromium driven by playwright-core.
// Usage: node consent_browser.cjs AUTHORIZE_URL approve|deny|none USER PASSWORD SCREENSHOT [IDP_LOGIN]
// Opens the page, fills the sign-in when approving, screenshots it, clicks the decision and
// reports where the browser was sent (the client's redirect URI is a listener of this script).
// With IDP_LOGIN the director first sends the browser to an OpenID Connect provider (the npm
// oidc-provider's development pages): it signs in there as IDP_LOGIN and continues.
const http = require('node:http');
const { chromium } = require('playwright-core');

(async () => {
  const [authorizeUrl, decision, user, password, screenshot, idpLogin] = process.argv.slice(2);
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
    let response = await page.goto(authorizeUrl);
    const director = new URL(authorizeUrl).origin;
    const report = {};
    if (idpLogin) {
      report.idp = new URL(page.url()).origin;
      await page.fill('input[name=login]', idpLogin);
      await page.fill('input[name=password]', 'any');
      await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
      // The provider's own consent step, then back to the director's callback.
      [response] = await Promise.all([
        page.waitForResponse((r) => r.url().startsWith(`${director}/oauth/callback`)),
        page.click('button[type=submit]'),
      ]);
      await page.waitForLoadState();
      report.signed_in_as = await page.textContent('.who strong', { timeout: 2000 }).catch(() => null);
    }
    Object.assign(report, {
      status: response.status(),
      title: await page.title(),
      client: await page.textContent('#client-name', { timeout: 2000 }).catch(() => null),
      scopes: await page.$$eval('#scopes li', (items) => items.map((li) => li.textContent)),
      redirect_host: await page.textContent('#redirect-host', { timeout: 2000 }).catch(() => null),
      csp: response.headers()['content-security-policy'] || null,
    });
    if (decision === 'none') {
      report.body = await page.textContent('body');
      console.log(JSON.stringify(report));
      return;
    }
    if (decision === 'approve' && !idpLogin) {
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
    report.code = back.searchParams.get('code');
    report.params = Object.fromEntries([...back.searchParams.keys()].map((k) =>
      [k, k === 'code' ? (back.searchParams.get(k).length > 20 ? 'present' : 'short') : back.searchParams.get(k)]));
    console.log(JSON.stringify(report));
  } finally {
    await browser.close();
    stop();
  }
})().catch((e) => { console.error(e); process.exit(1); });
