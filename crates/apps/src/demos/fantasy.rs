//! `fantasy`: the whitepaper's first example. Two teams' stats go in, the model picks the
//! winner (Choice format), and the league pays the prize to the winning team's owner.

use alloy::primitives::{Address, U256, keccak256};

use crate::{
    Answer, DemoEnv, Error, Outcome, Result,
    bindings::FantasyLeague,
    env::{eth, event, rejected},
};

const NAME: &str = "fantasy";
/// The two teams: names (the choices), stats (what the model reads).
pub(crate) const TEAMS: [&str; 2] = ["Lakers", "Celtics"];
const STATS: [&str; 2] = [
    "5 wins, 12 losses this season; averaging 98 points; two starters injured",
    "15 wins, 2 losses this season; averaging 121 points; no injuries",
];
/// The prize the creator puts up: 0.01 ETH.
const PRIZE: u64 = 10_000_000_000_000_000;

pub(crate) async fn run(env: &DemoEnv) -> Result<Outcome> {
    env.say("Deploying FantasyLeague");
    let league = FantasyLeague::deploy(
        env.provider().clone(),
        env.kernel().addresses().kernel,
        env.model_id(),
    )
    .await
    .map_err(|e| Error::Rejected {
        action: "deploy FantasyLeague".into(),
        reason: e.to_string(),
    })?;
    let address = *league.address();
    env.say(format!("  FantasyLeague at {address}"));
    // Fresh payees, so the prize is the only thing their balances can show.
    let owners: [Address; 2] = std::array::from_fn(|i| {
        Address::from_word(keccak256([address.as_slice(), TEAMS[i].as_bytes()].concat()))
    });
    let fee = league.judgingFee().call().await.map_err(|e| rejected("judgingFee", e))?;
    env.say(format!(
        "Creating the matchup {} vs {} with a prize of {} (kernel fee {})",
        TEAMS[0],
        TEAMS[1],
        eth(U256::from(PRIZE)),
        eth(fee)
    ));
    for (team, stats) in TEAMS.iter().zip(STATS) {
        env.say(format!("  {team}: {stats}"));
    }
    let call = league
        .createMatchup(TEAMS.map(String::from), STATS.map(String::from), owners)
        .value(fee + U256::from(PRIZE));
    let receipt = env.send("createMatchup", call).await?;
    let created = event::<FantasyLeague::MatchupCreated>(&receipt)?;
    let prompt = created.promptId;
    env.say(format!("  matchup {} judged by prompt {prompt}", created.matchupId));

    let matchup = match env.answer(prompt).await? {
        Answer::Finalized(output) => {
            let index = U256::from_be_slice(&output);
            let winner = TEAMS.get(index.saturating_to::<usize>()).ok_or_else(|| {
                Error::Unexpected { what: "answer", detail: format!("choice index {index}") }
            })?;
            env.say(format!("Answer: {winner} wins"));
            let state = league
                .getMatchup(created.matchupId)
                .call()
                .await
                .map_err(|e| rejected("getMatchup", e))?;
            let winner_owner = owners[index.saturating_to::<usize>()];
            let paid = env.balance(winner_owner).await?;
            let expected =
                format!("decided for {winner}, {} paid to {winner_owner}", eth(U256::from(PRIZE)));
            let found = format!(
                "status {:?}, winner index {}, {} at {winner_owner}",
                state.status,
                state.winner,
                eth(paid)
            );
            // MatchupStatus.Decided = 2.
            if state.status != 2 || U256::from(state.winner) != index || paid != U256::from(PRIZE) {
                return Err(Error::EffectMismatch { demo: NAME, expected, found });
            }
            env.say(format!(
                "Effect: prize of {} paid to {winner_owner}, owner of the {winner}",
                eth(paid)
            ));
            (winner.to_string(), format!("prize paid to the {winner}' owner {winner_owner}"))
        }
        Answer::Refunded => {
            env.say("No answer: the kernel refunded the fee; reclaiming the prize");
            env.send("reclaim", league.reclaim(created.matchupId)).await?;
            let state = league
                .getMatchup(created.matchupId)
                .call()
                .await
                .map_err(|e| rejected("getMatchup", e))?;
            // MatchupStatus.Reclaimed = 3.
            if state.status != 3 {
                return Err(Error::EffectMismatch {
                    demo: NAME,
                    expected: "the matchup reclaimed".into(),
                    found: format!("status {}", state.status),
                });
            }
            ("(refunded)".to_owned(), "prize and fee returned to the creator".to_owned())
        }
    };
    Ok(Outcome { contract: address, prompts: vec![prompt], answer: matchup.0, effect: matchup.1 })
}
