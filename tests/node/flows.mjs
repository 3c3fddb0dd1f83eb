// Resend's official Node SDK, unchanged, against a Postyard API (RESEND_BASE_URL, RESEND_API_KEY).
//   node flows.mjs flows <verified domain> <webhook endpoint>   every flow the SDK has; prints what it saw as JSON
//   node flows.mjs receiving <email id>                          reads a received email and its attachment
//   node flows.mjs verify                                        reads {payload, headers, secret} on stdin and
//                                                                prints the event resend.webhooks.verify returns
// Any error the SDK reports ends the run with exit status 1 and names the step.
import { Resend } from "resend";

const resend = new Resend(process.env.RESEND_API_KEY);

async function step(name, promise) {
  const { data, error } = await promise;
  if (error) {
    console.error(JSON.stringify({ step: name, error }));
    process.exit(1);
  }
  return data;
}

async function flows(domain, endpoint) {
  const from = `Acme <hello@${domain}>`;
  // A recipient of this run alone: an earlier run's mail to it may have bounced and suppressed it.
  const bob = `bob-${Date.now()}@example.org`;
  const seen = {};
  const key = await step("apiKeys.create", resend.apiKeys.create({ name: "from node" }));
  seen.keys = (await step("apiKeys.list", resend.apiKeys.list())).data.map((k) => k.id).includes(key.id);
  await step("apiKeys.remove", resend.apiKeys.remove(key.id));

  const created = await step("domains.create", resend.domains.create({ name: `node-${Date.now()}.example` }));
  seen.domain = (await step("domains.get", resend.domains.get(created.id))).name;
  await step("domains.update", resend.domains.update({ id: created.id, tls: "enforced" }));
  await step("domains.verify", resend.domains.verify(created.id));
  seen.domains = (await step("domains.list", resend.domains.list({ limit: 100 }))).data.length;
  await step("domains.remove", resend.domains.remove(created.id));

  const sent = await step("emails.send", resend.emails.send({
    from, to: [bob], subject: "From Node", html: "<p>Hi</p>", text: "Hi",
    tags: [{ name: "kind", value: "node" }],
    attachments: [{ filename: "hello.txt", content: Buffer.from("hello from node") }],
  }, { idempotencyKey: `node-${Date.now()}` }));
  seen.email = (await step("emails.get", resend.emails.get(sent.id))).subject;
  seen.listed = (await step("emails.list", resend.emails.list({ limit: 10 }))).data.map((e) => e.id).includes(sent.id);
  const attachments = await step("emails.attachments.list", resend.emails.attachments.list({ emailId: sent.id }));
  seen.attachment = (await step("emails.attachments.get", resend.emails.attachments.get({
    emailId: sent.id, id: attachments.data[0].id }))).size;
  seen.batch = (await step("batch.send", resend.batch.send([
    { from, to: ["a@example.org"], subject: "1", text: "1" },
    { from, to: ["b@example.org"], subject: "2", text: "2" }]))).data.length;
  const later = await step("emails.send scheduled", resend.emails.send({
    from, to: [bob], subject: "Later", text: "Later", scheduledAt: "in 1 hour" }));
  await step("emails.update", resend.emails.update({ id: later.id, scheduledAt: "tomorrow at 9am" }));
  await step("emails.cancel", resend.emails.cancel(later.id));
  seen.canceled = (await step("emails.get canceled", resend.emails.get(later.id))).last_event;

  const hook = await step("webhooks.create", resend.webhooks.create({ endpoint, events: ["email.sent"] }));
  await step("webhooks.update", resend.webhooks.update(hook.id, { events: ["email.delivered"] }));
  seen.webhook = (await step("webhooks.get", resend.webhooks.get(hook.id))).events;
  seen.webhooks = (await step("webhooks.list", resend.webhooks.list())).data.length;
  await step("webhooks.remove", resend.webhooks.remove(hook.id));

  const template = await step("templates.create", resend.templates.create({
    name: "node welcome", from, subject: "Welcome {{{NAME}}}", html: "<p>Welcome {{{NAME}}}</p>",
    variables: [{ key: "NAME", type: "string", fallbackValue: "friend" }] }));
  await step("templates.update", resend.templates.update(template.id, { text: "Welcome {{{NAME}}}" }));
  await step("templates.publish", resend.templates.publish(template.id));
  const copy = await step("templates.duplicate", resend.templates.duplicate(template.id));
  seen.templates = (await step("templates.list", resend.templates.list())).data.length;
  seen.template = (await step("templates.get", resend.templates.get(template.id))).status;
  const rendered = await step("emails.send with a template", resend.emails.send({
    from, to: [bob], subject: "Welcome", template: { id: template.id, variables: { NAME: "Bob" } } }));
  seen.rendered = (await step("emails.get rendered", resend.emails.get(rendered.id))).html;
  await step("templates.remove", resend.templates.remove(copy.id));
  console.log(JSON.stringify(seen));
}

async function receiving(emailId) {
  const seen = {};
  const listed = await step("emails.receiving.list", resend.emails.receiving.list({ limit: 100 }));
  seen.listed = listed.data.map((e) => e.id).includes(emailId);
  const email = await step("emails.receiving.get", resend.emails.receiving.get(emailId));
  seen.subject = email.subject;
  seen.from = email.from;
  const attachments = await step("emails.receiving.attachments.list",
    resend.emails.receiving.attachments.list({ emailId }));
  const attachment = await step("emails.receiving.attachments.get",
    resend.emails.receiving.attachments.get({ emailId, id: attachments.data[0].id }));
  seen.attachment = attachment.filename;
  seen.downloaded = (await fetch(attachment.download_url).then((r) => r.arrayBuffer())).byteLength;
  console.log(JSON.stringify(seen));
}

async function verify() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const { payload, headers, secret } = JSON.parse(Buffer.concat(chunks).toString());
  // Read as Resend's docs read them: the three svix-* request headers.
  const event = resend.webhooks.verify({
    payload, webhookSecret: secret,
    headers: { id: headers["svix-id"], timestamp: headers["svix-timestamp"], signature: headers["svix-signature"] },
  });
  console.log(JSON.stringify(event));
}

const [mode, ...args] = process.argv.slice(2);
if (mode === "flows") await flows(...args);
else if (mode === "receiving") await receiving(...args);
else if (mode === "verify") await verify();
else { console.error("usage: node flows.mjs flows <domain> <endpoint> | receiving <email id> | verify"); process.exit(2); }
