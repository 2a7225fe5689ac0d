import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RouteTable } from '../../lib/http/routing/routeTable.ts';

test('static segments win over templates, whatever the order of registration', () => {
  const table = new RouteTable<string>();
  table.add('/trips/{trip_id}', 'get', 'getTrip');
  table.add('/trips/{trip_id}/vendor', 'post', 'updateTripVendor');
  table.add('/trips/pages', 'get', 'listTripPages');
  table.add('/items/{id}/{part}', 'get', 'two-params');
  table.add('/items/{id}/fixed', 'get', 'one-param');
  assert.equal(table.match('/trips/pages')?.methods.get('GET'), 'listTripPages');
  assert.deepEqual(table.match('/trips/12')?.params, { trip_id: '12' });
  assert.equal(table.match('/trips/12/vendor')?.methods.get('POST'), 'updateTripVendor');
  assert.equal(table.match('/items/1/fixed')?.methods.get('GET'), 'one-param');
  assert.equal(table.match('/items/1/other')?.methods.get('GET'), 'two-params');
  assert.equal(table.match('/trips/'), undefined);
  assert.equal(table.match('/trips'), undefined);
  assert.equal(table.match('/trips/1/2'), undefined);
});
