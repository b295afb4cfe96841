// The web console in a real browser: Debian's chromium driven by playwright-core, checked
// with axe-core on every page.
// Usage: node console_browser.cjs BASE_URL USER PASSWORD FIXTURE_COMMAND SHOTS_DIR
// Signs in (first with a wrong password), watches the overview, adds a stdio server and waits
// for it to become ready on the (live) overview, finds its tools, calls one from the
// playground, runs a long call as a task and cancels it, reloads the configuration, creates a
// profile, reads analytics, tries a change with a forged CSRF token, and signs out. Prints
// one JSON report.
const path = require('node:path');
const fs = require('node:fs');
const { chromium } = require('playwright-core');

const AXE_SOURCE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

(async () => {
  const [base, user, password, fixture, shots] = process.argv.slice(2);
  fs.mkdirSync(shots, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const report = { console_errors: [], axe: {}, screenshots: [] };
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    page.on('console', (m) => { if (m.type() === 'error') report.console_errors.push(m.text()); });
    page.on('pageerror', (e) => report.console_errors.push(String(e)));

    const shot = async (name) => {
      const file = path.join(shots, `${name}.png`);
      await page.screenshot({ path: file, fullPage: true });
      report.screenshots.push(file);
    };
    const axe = async (name) => {
      // Evaluated through the driver: the console's CSP (rightly) refuses an injected script.
      await page.evaluate(AXE_SOURCE);
      const result = await page.evaluate(async () => window.axe.run(document, {
        resultTypes: ['violations'],
      }));
      report.axe[name] = result.violations
        .filter((v) => v.impact === 'serious' || v.impact === 'critical')
        .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
    };

    // Not signed in: to the sign-in page.
    await page.goto(`${base}/ui/`);
    report.first_url = new URL(page.url()).pathname;
    await axe('sign-in');
    await shot('sign-in');
    await page.fill('#username', user);
    await page.fill('#password', 'not-the-password');
    const [wrong] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/ui/login') && r.request().method() === 'POST'),
      page.click('button[type=submit]'),
    ]);
    report.wrong_password_status = wrong.status();
    report.wrong_password_message = await page.textContent('#sign-in-error');
    // The 401 of that answer is the only error the browser may log.
    report.console_errors = report.console_errors.filter((e) => !e.includes('401'));
    await page.fill('#username', user);
    await page.fill('#password', password);
    await Promise.all([page.waitForURL(`${base}/ui/`), page.click('button[type=submit]')]);
    report.signed_in_as = await page.textContent('.who strong');
    const cookie = (await context.cookies()).find((c) => c.name === 'mcpd_console');
    report.cookie = cookie && { httpOnly: cookie.httpOnly, sameSite: cookie.sameSite, path: cookie.path };

    // The overview, with the configured server ready.
    await page.waitForSelector('#upstreams tr[data-server=a] .state-running');
    report.overview_calls_a = await page.textContent('#upstreams tr[data-server=a] td.calls');
    await axe('overview');
    await shot('overview');

    // Add a stdio server; the overview (live) shows it ready.
    await page.click('nav a[href="/ui/servers"]');
    await page.fill('#name', 'added');
    await page.selectOption('#transport', 'stdio');
    await page.fill('#command', fixture);
    await Promise.all([page.waitForURL(/\/ui\/servers\?notice=/), page.click('form.stack button[type=submit]')]);
    report.added_notice = await page.textContent('p.notice');
    await axe('servers');
    await shot('servers');
    await page.click('nav a[href="/ui/"]');
    const started = Date.now();
    await page.waitForSelector('#upstreams tr[data-server=added] .state-running', { timeout: 20000 });
    report.added_ready_ms = Date.now() - started;
    // Live: without a reload, the page follows a change made elsewhere (the admin API).
    report.overview_live = await page.getAttribute('#live', 'data-live');

    // Restarted from the servers page: a new process, and its stderr lines are kept.
    await page.click('nav a[href="/ui/servers"]');
    await Promise.all([
      page.waitForURL(/notice=Restarting/),
      page.click('tr[data-server=added] button[aria-label="Restart added"]'),
    ]);
    report.restart_notice = await page.textContent('p.notice');
    for (let i = 0; i < 100; i++) {
      await page.goto(`${base}/ui/servers`);
      report.stderr = await page.textContent('tr[data-server=added] pre.stderr').catch(() => '');
      const running = await page.$('tr[data-server=added] .state-running');
      if (running && (report.stderr.match(/fixture server fixture started/g) || []).length >= 2) break;
      await page.waitForTimeout(200);
    }

    // Edited in place: one more argument, saved as one change.
    await page.click('tr[data-server=added] a[aria-label="Edit added"]');
    report.edit_name_readonly = await page.getAttribute('#name', 'readonly') !== null;
    await page.fill('#args', '--edited');
    await Promise.all([page.waitForURL(/notice=Saved/), page.click('form.stack button[type=submit]')]);
    report.edit_notice = await page.textContent('p.notice');

    // Its tools in the catalog.
    await page.goto(`${base}/ui/tools?q=added%2Fecho`);
    report.found_tools = await page.$$eval('#tools tbody tr', (rows) => rows.map((r) => r.dataset.tool));
    await axe('tools');
    await shot('tools');

    // The playground: a tool of the added server called with a form made from its schema,
    // its progress and result shown (through the script's event stream).
    await page.goto(`${base}/ui/playground?tool=added%2Fprogress`);
    report.playground_fields = await page.$$eval('#call [name^="a."]', (f) => f.map((i) => `${i.name}:${i.type}`));
    await page.fill('#arg-steps', '3');
    await page.click('#call button[type=submit]');
    await page.waitForSelector('#result #call-content', { timeout: 20000 });
    report.playground_result = (await page.textContent('#result #call-content')).trim();
    report.playground_progress = await page.$$eval('#result .progress-log li', (l) => l.map((i) => i.textContent));
    await axe('playground');
    await shot('playground');

    // A long call run as a task, followed and cancelled on the tasks page.
    await page.goto(`${base}/ui/playground?tool=a%2Fslow`);
    await page.fill('#arg-ms', '120000');
    await page.check('#call input[name=as_task]');
    await page.click('#call button[type=submit]');
    await page.waitForSelector('#task-created', { timeout: 20000 });
    report.task_id = await page.textContent('#task-created code');
    await page.click('#task-created a');
    await page.waitForSelector(`tr[data-task="${report.task_id}"][data-status=working]`);
    await axe('tasks');
    await shot('tasks');
    await Promise.all([
      page.waitForURL(/notice=Cancelled/),
      page.click(`tr[data-task="${report.task_id}"] button`),
    ]);
    report.cancel_notice = await page.textContent('p.notice');
    report.task_status_after = await page.getAttribute(`tr[data-task="${report.task_id}"]`, 'data-status');

    // OAuth clients and grants.
    await page.click('nav a[href="/ui/oauth"]');
    report.oauth_clients = await page.$$eval('#clients tbody tr', (rows) => rows.map((r) => r.dataset.client));
    await axe('oauth');
    await shot('oauth');

    // The configuration, reloaded.
    await page.click('nav a[href="/ui/config"]');
    const configText = await page.textContent('#config');
    report.config_has_added = configText.includes('[servers.added]');
    report.config_has_edit = configText.includes('--edited');
    await Promise.all([page.waitForURL(/notice=Reloaded/), page.click('main form button[type=submit]')]);
    await axe('config');
    await shot('config');

    // A profile that hides a tool: its token is shown once.
    await page.click('nav a[href="/ui/profiles"]');
    await page.fill('#p-name', 'narrow');
    await page.fill('#p-servers', 'a');
    await page.fill('#p-deny', 'a/echo');
    await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/ui/profiles') && r.request().method() === 'POST'),
      page.click('form.stack button[type=submit]'),
    ]);
    report.profile_token = await page.textContent('#token');
    report.profiles = await page.$$eval('#profiles tbody tr', (rows) => rows.map((r) => r.dataset.profile));
    await axe('profiles');
    await shot('profiles');
    // A project of one server.
    await page.click('nav a[href="/ui/projects"]');
    await page.fill('#j-name', 'proj');
    await page.fill('#j-servers', 'a');
    await Promise.all([page.waitForURL(/notice=Created/), page.click('form.stack button[type=submit]')]);
    report.projects = await page.$$eval('#projects tbody tr', (rows) => rows.map((r) => r.dataset.project));
    await axe('projects');
    await shot('projects');

    // In the playground, a profile that hides the tool has nothing to call.
    await page.goto(`${base}/ui/playground?profile=narrow&tool=a%2Fecho`);
    report.playground_hidden = await page.textContent('main p.error');
    report.playground_narrow_tools = await page.$$eval('#tool option', (o) => o.map((i) => i.value));

    // Analytics: the calls made before the browser came and from the playground show up, per
    // tool, as bars and over time.
    await page.click('nav a[href="/ui/analytics"]');
    for (let i = 0; i < 100; i++) {
      report.analytics_tools = await page.$$eval('#analytics tbody tr', (rows) => rows.map((r) => r.dataset.tool));
      if (report.analytics_tools.includes('added/progress')) break;
      await page.waitForTimeout(200);
      await page.reload();
    }
    report.analytics_chart = await page.$$eval('svg.bars rect', (bars) => bars.length);
    report.analytics_lines = await page.$$eval('svg.lines polyline', (l) => l.map((p) => p.getAttribute('class')));
    await axe('analytics');
    await shot('analytics');

    // A change with a forged CSRF token (same cookie, wrong token) is refused, and changes
    // nothing.
    const logged = report.console_errors.length;
    const forged = await page.evaluate(async () => {
      const r = await fetch('/ui/servers/added/remove', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'csrf=forged',
      });
      return r.status;
    });
    report.forged_csrf_status = forged;
    report.console_errors.splice(logged); // the browser logs that refusal, as it should
    await page.goto(`${base}/ui/servers`);
    report.still_there = await page.$$eval('#servers tbody tr', (rows) => rows.map((r) => r.dataset.server));

    // On a phone: no page scrolls sideways (wide tables scroll in their own box).
    await page.setViewportSize({ width: 390, height: 844 });
    report.phone_overflow = [];
    for (const path of ['/ui/servers', '/ui/tools', '/ui/playground?tool=a%2Fecho', '/ui/profiles',
      '/ui/projects', '/ui/tasks', '/ui/oauth', '/ui/analytics', '/ui/config', '/ui/']) {
      await page.goto(`${base}${path}`);
      if (await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1)) {
        report.phone_overflow.push(path);
      }
    }
    await shot('overview-phone');

    // Keyboard: the first Tab reaches the skip link.
    await page.keyboard.press('Tab');
    report.first_tab = await page.evaluate(() => document.activeElement && document.activeElement.textContent);

    // Signed out: the console is closed again.
    await page.click('.who button');
    await page.waitForURL(`${base}/ui/login`);
    await page.goto(`${base}/ui/servers`);
    report.after_sign_out = new URL(page.url()).pathname;
  } catch (e) {
    report.failure = String(e && e.stack || e);
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(report));
})();
