// The official Node client, unchanged but for its base path, run by tests/api/test_node_client.py.
// Prints one JSON object with what each call answered.
const mailchimp = require("@mailchimp/mailchimp_transactional");

async function main() {
  const client = mailchimp(process.env.MANDRILL_KEY);
  client.basePath = process.env.MANDRILL_BASE;
  const out = {};
  out.ping = await client.users.ping();
  out.added = await client.templates.add({
    name: "Node Welcome", code: "<p>Hi *|FNAME|*</p>", subject: "Welcome *|FNAME|*",
    from_email: "team@agency.test", publish: false,
  });
  out.published = await client.templates.publish({ name: "node-welcome" });
  out.rendered = await client.templates.render({
    template_name: "node-welcome", template_content: [], merge_vars: [{ name: "FNAME", content: "Ana" }],
  });
  out.sent = await client.messages.sendTemplate({
    template_name: "node-welcome", template_content: [],
    message: { to: [{ email: "ana@example.test" }], merge_vars: [{ rcpt: "ana@example.test", vars: [{ name: "fname", content: "Ana" }] }] },
  });
  out.scheduled = await client.messages.send({
    message: { from_email: "team@agency.test", text: "later", to: [{ email: "later@example.test" }] },
    send_at: "2099-01-01 00:00:00",
  });
  out.listed = await client.messages.listScheduled({});
  out.cancelled = await client.messages.cancelScheduled({ id: out.scheduled[0]._id });
  const missing = await client.templates.info({ name: "nope" });
  out.missing = { status: missing.response && missing.response.status, data: missing.response && missing.response.data };
  console.log(JSON.stringify(out));
}

main().catch((error) => { console.error(error); process.exit(1); });
