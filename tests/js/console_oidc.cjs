// Signing in to the web console through an OpenID Connect provider (the npm oidc-provider's
// development pages) in Debian's chromium.
// Usage: node console_oidc.cjs BASE_URL IDP_LOGIN SHOT
// Prints one JSON report: where the browser ended, who the console says is signed in, or the
// refusal it showed.
const { chromium } = require('playwright-core');

(async () => {
  const [base, login, shotFile] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const report = {};
  try {
    const page = await browser.newPage();
    await page.goto(`${base}/ui/login`);
    await page.click('#oidc-sign-in');
    report.idp = new URL(page.url()).origin;
    await page.fill('input[name=login]', login);
    await page.fill('input[name=password]', 'any');
    await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
    // The provider's own consent step, then back through the director's callback.
    const [callback] = await Promise.all([
      page.waitForResponse((r) => r.url().startsWith(`${base}/oauth/callback`)),
      page.click('button[type=submit]'),
    ]);
    report.callback_status = callback.status();
    if (callback.status() === 200) {
      await page.waitForURL(`${base}/ui/`);
      report.signed_in_as = await page.textContent('.who strong');
      report.path = new URL(page.url()).pathname;
    } else {
      await page.waitForLoadState();
      report.refusal = await page.textContent('#sign-in-error');
      // The refusal's status is the one error the browser may log.
    }
    await page.screenshot({ path: shotFile, fullPage: true });
  } catch (e) {
    report.failure = String(e && e.stack || e);
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(report));
})();
