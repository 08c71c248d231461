import ArgumentParser
import SluiceClient
import SluiceWire
import Testing

@testable import SluiceCLI

/// `sluice cluster status`: parsing, the pure text and JSON formatting of a fixed status, and the merge
/// of several brokers' answers that feeds it. Nothing here talks to a broker.
@Suite("cluster status format")
struct ClusterStatusFormatTests {
    typealias Response = DescribeClusterResponse

    static func replica(_ node: Int32, end: Int64, lag: Int64, inSync: Bool) -> Response.Replica {
        Response.Replica(nodeId: node, logEndOffset: end, lag: lag, inSync: inSync)
    }

    /// Three brokers, 3 down; broker 1 controls. Partition 0: the leader's view with a lagging replica;
    /// 1: broker 1 answers but its leader has not heard from it lately; 2: no leader, a follower's view.
    static let status = Response(
        errorMessage: "broker 3 at 127.0.0.1:9403 did not answer: connection refused", controllerId: 1,
        brokers: [
            .init(nodeId: 1, host: "127.0.0.1", port: 9401, isUp: true),
            .init(nodeId: 2, host: "127.0.0.1", port: 9402, isUp: true),
            .init(nodeId: 3, host: "127.0.0.1", port: 9403, isUp: false),
        ],
        partitions: [
            .init(topic: "orders", partition: 0, leader: 1, term: 3, highWatermark: 120, replicas: [
                replica(1, end: 120, lag: 0, inSync: true), replica(2, end: 105, lag: 15, inSync: true),
                replica(3, end: -1, lag: -1, inSync: false),
            ]),
            .init(topic: "orders", partition: 1, leader: 2, term: 2, highWatermark: 80, replicas: [
                replica(2, end: 80, lag: 0, inSync: true), replica(3, end: 70, lag: 10, inSync: false),
                replica(1, end: 80, lag: 0, inSync: false),
            ]),
            .init(topic: "orders", partition: 2, leader: -1, term: 5, highWatermark: 40, replicas: [
                replica(3, end: -1, lag: -1, inSync: false), replica(1, end: 41, lag: -1, inSync: false),
                replica(2, end: -1, lag: -1, inSync: false),
            ]),
        ])

    @Test("text: a brokers table with state and controller, then partitions with leader, term, HW, replicas and lag")
    func text() {
        #expect(ClusterStatusFormat.text(Self.status) == """
            ID  ADDRESS         STATE  CONTROLLER
            1   127.0.0.1:9401  up     yes
            2   127.0.0.1:9402  up
            3   127.0.0.1:9403  down

            TOPIC   PARTITION  LEADER  TERM  HW   REPLICAS  LAG
            orders  0          1       3     120  1,2,3     1:0 2:15 3:down
            orders  1          2       2     80   2,3,1     2:0 3:down 1:down
            orders  2          none    5     40   3,1,2     3:down 1:? 2:?
            """)
    }

    @Test("text without partitions says how to create one")
    func noPartitions() {
        var empty = Self.status
        empty.partitions = []
        empty.controllerId = -1
        #expect(ClusterStatusFormat.text(empty) == """
            ID  ADDRESS         STATE  CONTROLLER
            1   127.0.0.1:9401  up
            2   127.0.0.1:9402  up
            3   127.0.0.1:9403  down

            no partitions; create a topic with: sluice topic create NAME -p 3 -r 3
            """)
    }

    @Test("a replica's lag: the number when in sync, down when its broker or the leader's contact is lost, ? when unknown")
    func replicaState() {
        let up: Set<Int32> = [1, 2]
        #expect(ClusterStatusFormat.replicaState(Self.replica(1, end: 9, lag: 4, inSync: true), up: up) == "4")
        #expect(ClusterStatusFormat.replicaState(Self.replica(1, end: 9, lag: 0, inSync: false), up: up) == "down")
        #expect(ClusterStatusFormat.replicaState(Self.replica(3, end: 9, lag: 0, inSync: true), up: up) == "down")
        #expect(ClusterStatusFormat.replicaState(Self.replica(2, end: -1, lag: -1, inSync: false), up: up) == "?")
    }

    @Test("json: every field with protocol.md's names; the message, or null")
    func json() {
        var one = Self.status
        one.brokers = [one.brokers[0]]
        one.partitions = [Response.Partition(topic: "t", partition: 0, leader: 1, term: 2, highWatermark: 7,
                                             replicas: [Self.replica(1, end: 7, lag: 0, inSync: true)])]
        one.errorMessage = nil
        #expect(ClusterStatusFormat.json(one).render() == #"{"controller":1,"brokers":[{"id":1,"host":"127.0.0.1","port":9401,"up":true,"controller":true}],"#
            + #""partitions":[{"topic":"t","partition":0,"leader":1,"term":2,"high_watermark":7,"#
            + #""replicas":[{"id":1,"log_end_offset":7,"lag":0,"in_sync":true}]}],"message":null}"#)
        one.errorMessage = "broker 2 did not answer"
        #expect(ClusterStatusFormat.json(one).render().hasSuffix(#","message":"broker 2 did not answer"}"#))
    }

    @Test("parses: cluster status with --json, --internal and connection options before or after")
    func parses() throws {
        let plain = try #require(try SluiceCommand.parseAsRoot(["cluster", "status"]) as? ClusterCommand.Status)
        #expect(!plain.json && !plain.includeInternal)
        let flagged = try #require(try SluiceCommand.parseAsRoot(
            SluiceCommand.movingConnectionOptions(["-b", "h:1,h:2", "cluster", "status", "--json", "--internal"])) as? ClusterCommand.Status)
        #expect(flagged.json && flagged.includeInternal)
        #expect(try flagged.connection.addresses().map(\.description) == ["h:1", "h:2"])
    }

    // MARK: Merging answers

    static let members: [Response.Broker] = [1, 2, 3].map { Response.Broker(nodeId: $0, host: "h", port: 9400 + $0, isUp: true) }

    static func answer(controller: Int32, _ partitions: [Response.Partition]) -> Response {
        Response(controllerId: controller, brokers: members, partitions: partitions)
    }

    static func row(_ partition: Int32, leader: Int32, term: Int64, hw: Int64) -> Response.Partition {
        Response.Partition(topic: "t", partition: partition, leader: leader, term: term, highWatermark: hw, replicas: [])
    }

    @Test("merge: each partition from the broker leading it, else the highest term; up means answered; the self-declared controller wins")
    func merge() {
        var merge = ClusterStatusMerge(members: Self.members)
        // Broker 2 leads partition 0 and follows 1; broker 1 leads 1 in term 4, though broker 2 claims
        // (stale) that 3 leads it in term 3; nobody answering leads partition 2.
        merge.add(Self.answer(controller: 1, [Self.row(0, leader: 2, term: 7, hw: 10), Self.row(1, leader: 3, term: 3, hw: 5),
                                              Self.row(2, leader: 3, term: 2, hw: 1)]), from: 2)
        merge.add(Self.answer(controller: 1, [Self.row(0, leader: 2, term: 6, hw: 9), Self.row(1, leader: 1, term: 4, hw: 6),
                                              Self.row(2, leader: -1, term: 3, hw: 1)]), from: 1)
        merge.addFailure(of: 3, reason: "connection refused")
        let result = merge.result
        #expect(result.brokers.map(\.isUp) == [true, true, false])
        #expect(result.controllerId == 1)
        #expect(result.partitions == [Self.row(0, leader: 2, term: 7, hw: 10), Self.row(1, leader: 1, term: 4, hw: 6),
                                      Self.row(2, leader: -1, term: 3, hw: 1)])
        #expect(result.errorMessage == "broker 3 at h:9403 did not answer: connection refused")
    }

    @Test("merge: with no self-declared controller the one most answers name wins; nothing named gives -1")
    func mergeController() {
        var merge = ClusterStatusMerge(members: Self.members)
        merge.add(Self.answer(controller: 3, []), from: 1)
        merge.add(Self.answer(controller: 3, []), from: 2)
        #expect(merge.result.controllerId == 3)
        #expect(merge.result.errorMessage == nil)
        var none = ClusterStatusMerge(members: Self.members)
        none.add(Self.answer(controller: -1, []), from: 1)
        #expect(none.result.controllerId == -1)
        #expect(none.result.brokers.filter(\.isUp).map(\.nodeId) == [1])
    }
}
