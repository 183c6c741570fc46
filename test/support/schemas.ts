/** Example writer schemas shared by the decoder's unit and integration tests. */

export const ORDER_AVRO = {
  type: 'record',
  name: 'OrderShipped',
  namespace: 'shop',
  fields: [
    { name: 'orderId', type: 'string' },
    { name: 'shippedAt', type: { type: 'long', logicalType: 'timestamp-millis' } },
    { name: 'deliveryDate', type: { type: 'int', logicalType: 'date' } },
    { name: 'total', type: { type: 'bytes', logicalType: 'decimal', precision: 10, scale: 2 } },
    { name: 'trackingId', type: { type: 'string', logicalType: 'uuid' } },
    { name: 'note', type: ['null', 'string'], default: null },
    {
      name: 'customer',
      type: {
        type: 'record',
        name: 'Customer',
        fields: [
          { name: 'email', type: 'string' },
          { name: 'name', type: 'string' },
        ],
      },
    },
  ],
};
