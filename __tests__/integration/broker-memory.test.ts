// The Broker contract against the in-memory broker.
import { MemoryBroker } from '../../src/brokers/memory';
import { brokerContract } from './broker.contract';

brokerContract('memory', async () => ({ broker: new MemoryBroker(), ready: () => Promise.resolve() }));
