// Unit tests of the viewer strings: node --test web/test/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dictionaries, noticeText, t } from '../static/viewer/i18n.js';

test('French and English have the same keys, none empty', () => {
  assert.deepEqual(Object.keys(dictionaries.en).sort(), Object.keys(dictionaries.fr).sort());
  for (const lang of ['fr', 'en']) {
    for (const [key, text] of Object.entries(dictionaries[lang])) assert.ok(text.trim(), `${lang} ${key}`);
  }
});

test('helpdesk notices are translated in both languages', () => {
  for (const code of ['session.ended_by_staff', 'session.disconnected_by_staff']) {
    for (const lang of ['fr', 'en']) assert.ok(noticeText(code, lang), `${lang} ${code}`);
  }
  assert.match(noticeText('session.disconnected_by_staff', 'fr'), /assistance a déconnecté/);
  assert.match(noticeText('session.disconnected_by_staff', 'en'), /helpdesk disconnected/);
});

test('helpdesk texts', () => {
  assert.equal(t('message.from', 'fr', { name: 'Aïcha' }), 'Message de l’assistance (Aïcha) :');
  assert.equal(t('message.from', 'en', { name: 'Aïcha' }), 'Message from the helpdesk (Aïcha):');
  assert.equal(t('control.ask', 'fr', { name: 'Aïcha' }), 'Aïcha demande à prendre la main sur votre session.');
  assert.equal(t('control.ask', 'en', { name: 'Aïcha' }), 'Aïcha asks to take control of your session.');
  assert.equal(t('control.granted', 'fr', { name: 'Aïcha' }), 'Aïcha a la main');
  assert.equal(t('control.takeBack', 'fr'), 'Reprendre la main');
  assert.equal(t('shadow.readOnly', 'fr', { name: 'Zoé' }), 'Observation en lecture seule de la session de Zoé');
  assert.equal(t('shadow.request', 'fr'), 'Demander la main');
  assert.equal(t('shadow.request', 'en'), 'Request control');
  // Every placeholder of a French text is in its English text too.
  for (const [key, fr] of Object.entries(dictionaries.fr)) {
    const names = (s) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
    assert.deepEqual(names(dictionaries.en[key]), names(fr), key);
  }
});
