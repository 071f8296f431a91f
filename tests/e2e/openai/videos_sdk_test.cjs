// The official OpenAI Node SDK against turbovid's /v1/videos (run by tests/e2e/test_openai_sdk.py,
// which starts the scheduler and a CPU worker and checks the MP4s written here with ffprobe).
// Environment: TV_OPENAI_BASE_URL (http://127.0.0.1:PORT/v1), TV_PNG (an image for I2V),
// TV_OUT (folder for the downloaded videos). Prints one JSON line with what it saw; exits 1 on
// the first failed check.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

// Node 18 has no global File, which the SDK's uploads need (its own error message says to set
// it from node:buffer); Node 20 and later have it.
if (typeof globalThis.File === 'undefined') globalThis.File = require('node:buffer').File;

const { default: OpenAI, toFile, APIError, NotFoundError, BadRequestError } = require('openai');

const client = new OpenAI({
  baseURL: process.env.TV_OPENAI_BASE_URL,
  apiKey: 'not-checked',  // the SDK requires one; the test's scheduler runs with --auth-mode off
  maxRetries: 0,
  timeout: 60_000,
});
const out = process.env.TV_OUT;

async function waitDone(id, seen) {
  const deadline = Date.now() + 180_000;
  while (Date.now() < deadline) {
    const video = await client.videos.retrieve(id);
    seen.add(video.status);
    if (video.status === 'completed' || video.status === 'failed') return video;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`video ${id} did not finish`);
}

function checkVideo(video) {
  assert.equal(video.object, 'video');
  assert.match(video.id, /^j[0-9a-f]{16}$/);
  assert.ok(['queued', 'in_progress', 'completed', 'failed'].includes(video.status), video.status);
  assert.equal(typeof video.progress, 'number');
  assert.ok(video.progress >= 0 && video.progress <= 100);
  assert.ok(Number.isInteger(video.created_at) && video.created_at > 1.6e9);
  assert.ok('completed_at' in video && 'expires_at' in video && 'error' in video);
  assert.equal(typeof video.seconds, 'string');
  assert.match(video.size, /^\d+x\d+$/);
}

async function expectError(promise, Kind, status, param) {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof Kind, `expected ${Kind.name}, got ${e && e.constructor.name}: ${e}`);
    assert.equal(e.status, status);
    assert.ok(e.error && typeof e.error.message === 'string' && e.error.message.length > 0);
    assert.equal(e.error.type, status >= 500 ? 'server_error' : 'invalid_request_error');
    if (param !== undefined) assert.equal(e.error.param, param, e.error.message);
    return e.error;
  }
  throw new Error('expected an error');
}

async function download(id, name) {
  const response = await client.videos.downloadContent(id);
  assert.equal(response.headers.get('content-type'), 'video/mp4');
  const bytes = Buffer.from(await response.arrayBuffer());
  assert.equal(bytes.subarray(4, 8).toString('latin1'), 'ftyp');
  const file = path.join(out, name);
  fs.writeFileSync(file, bytes);
  return { file, bytes: bytes.length };
}

async function main() {
  const result = {};
  // Text to video: model = a catalog id, seconds = 0.25 s (5 frames at 16 fps), size WxH.
  const created = await client.videos.create({
    prompt: 'a red fox in the snow', model: 'tiny-t2v', seconds: '0.25', size: '64x64',
  });
  checkVideo(created);
  assert.equal(created.model, 'tiny-t2v');
  assert.equal(created.seconds, '0.25');
  assert.equal(created.size, '64x64');
  assert.equal(created.prompt, 'a red fox in the snow');
  assert.ok(['queued', 'in_progress'].includes(created.status));
  assert.equal(created.completed_at, null);
  const seen = new Set([created.status]);
  const t2v = await waitDone(created.id, seen);
  checkVideo(t2v);
  assert.equal(t2v.status, 'completed', JSON.stringify(t2v.error));
  assert.equal(t2v.progress, 100);
  assert.equal(t2v.error, null);
  assert.ok(t2v.completed_at >= t2v.created_at);
  result.t2v = { id: t2v.id, size: t2v.size, seconds: t2v.seconds, statuses: [...seen],
                 ...(await download(t2v.id, 't2v.mp4')) };

  // Image to video: input_reference uploaded as multipart; the reported size follows the image.
  const image = await toFile(fs.readFileSync(process.env.TV_PNG), 'input.png', { type: 'image/png' });
  const i2vCreated = await client.videos.create({
    prompt: 'waves on a lake', model: 'tiny-i2v:turbo', input_reference: image, seconds: '0.25',
    size: '64x64',
  });
  checkVideo(i2vCreated);
  assert.equal(i2vCreated.model, 'tiny-i2v');  // turbo is its default variant
  const i2v = await waitDone(i2vCreated.id, new Set());
  assert.equal(i2v.status, 'completed', JSON.stringify(i2v.error));
  assert.equal(i2v.size, i2vCreated.size);
  result.i2v = { id: i2v.id, size: i2v.size, ...(await download(i2v.id, 'i2v.mp4')) };

  // List: newest first, one per page, followed page by page with `after` by the SDK.
  const first = await client.videos.list({ limit: 1 });
  assert.equal(first.data.length, 1);
  assert.equal(first.data[0].id, i2v.id);
  assert.equal(first.has_more, true);
  checkVideo(first.data[0]);
  // (Other videos of the same service may be listed too: only ours are compared.)
  const ours = (ids) => ids.filter((id) => id === t2v.id || id === i2v.id);
  const all = [];
  for await (const video of client.videos.list({ limit: 1 })) all.push(video.id);
  assert.deepEqual(ours(all), [i2v.id, t2v.id]);
  assert.equal(new Set(all).size, all.length);
  const ascending = await client.videos.list({ order: 'asc', limit: 100 });
  assert.deepEqual(ours(ascending.data.map((v) => v.id)), [t2v.id, i2v.id]);
  assert.equal(ascending.has_more, false);
  assert.equal(ascending.data.length, all.length);

  // Errors: OpenAI's shape, the field named in `param`.
  result.errors = {};
  result.errors.seconds = await expectError(
      client.videos.create({ prompt: 'x', model: 'tiny-t2v', seconds: '12' }), BadRequestError, 400,
      'seconds');
  result.errors.size = await expectError(
      client.videos.create({ prompt: 'x', model: 'tiny-t2v', size: '100x64' }), BadRequestError,
      400, 'size');
  result.errors.model = await expectError(
      client.videos.create({ prompt: 'x', model: 'sora-2' }), BadRequestError, 400, 'model');
  result.errors.image = await expectError(
      client.videos.create({ prompt: 'x', model: 'tiny-i2v' }), BadRequestError, 400,
      'input_reference');
  result.errors.missing = await expectError(client.videos.retrieve('jffffffffffffffff'),
                                            NotFoundError, 404);
  await expectError(client.videos.downloadContent(t2v.id, { variant: 'thumbnail' }),
                    BadRequestError, 400, 'variant');

  // Delete: the confirmation object, then the video is gone everywhere.
  const deleted = await client.videos.delete(t2v.id);
  assert.deepEqual(deleted, { id: t2v.id, object: 'video.deleted', deleted: true });
  await expectError(client.videos.retrieve(t2v.id), NotFoundError, 404);
  await expectError(client.videos.downloadContent(t2v.id), NotFoundError, 404);
  const after = await client.videos.list({ limit: 100 });
  assert.deepEqual(ours(after.data.map((v) => v.id)), [i2v.id]);
  assert.ok(APIError);
  console.log(JSON.stringify(result));
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
